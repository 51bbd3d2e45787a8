"""Outside judges: pretrained models nobody here trained (ASR, speaker, DNSMOS, VAD, STOI/PESQ) score audio clips."""
