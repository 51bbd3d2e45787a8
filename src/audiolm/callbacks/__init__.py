"""Lightning callbacks: NaN/Inf guard and throughput."""
