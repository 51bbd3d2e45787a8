"""One train.py under every launcher: a multirun whose sweep points each run DDP ranks, torchrun, srun, and the
submitit launcher (its local executor runs here; for SLURM, the sbatch file submitit would write is checked)."""

from __future__ import annotations

import os
import pickle
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import submitit
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf
from submitit.slurm import slurm

from audiolm.runs import shared_run_dir

from conftest import ROOT, TINY, run_entry

# configs/hydra/launcher/submitit_*.yaml take the place of the plugin's defaults on purpose (see audiolm.runs)
pytestmark = pytest.mark.filterwarnings(r"ignore:\s*'hydra/launcher/submitit_\w+' is validated:UserWarning")


def compose_train(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def subfolders(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir())


def sbatch_text(params: dict, folder: Path) -> str:
    """The sbatch file submitit writes for a 2-point sweep with the launcher's params: the plugin hands its keys
    to submitit (cluster-specific ones prefixed), which maps the generic ones to sbatch's names."""
    generic = set(OmegaConf.structured(BaseQueueConf).keys())
    job = {k: v for k, v in params.items() if k not in ("submitit_folder", "max_num_timeout")}
    # submitit refuses unknown keys, whichever cluster runs them
    submitit.AutoExecutor(folder=folder, cluster="debug").update_parameters(
        **{k if k in generic else f"slurm_{k}": v for k, v in job.items()}
    )
    rename = slurm.SlurmExecutor._equivalence_dict()
    sbatch = {rename.get(k, k): v for k, v in job.items() if v is not None}
    return slurm._make_sbatch_string(command="true", folder=folder, map_count=2, **sbatch)


def test_slurm_launcher_asks_one_task_per_gpu_and_hands_the_timeout_signal_to_lightning(tmp_path, monkeypatch):
    cfg = compose_train(
        [
            "hydra/launcher=submitit_slurm",
            "hydra.launcher.gpus_per_node=4",
            "hydra.launcher.nodes=2",
            "trainer=ddp_launched",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    text = sbatch_text(launcher.params, tmp_path)
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--cpus-per-task=8", "--time=240"):
        assert f"#SBATCH {line}\n" in text, text
    # Lightning's SLURMEnvironment requeues on SIGUSR1; submitit's own USR2 must not reach the job instead
    assert "#SBATCH --signal=USR1@120\n" in text and "USR2" not in text and "#SBATCH --requeue\n" in text
    # inside such a job, trainer=ddp_launched reads the same counts from SLURM's environment
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "4")
    monkeypatch.setenv("SLURM_NNODES", "2")
    trainer = compose_train(["trainer=ddp_launched"]).trainer
    assert (trainer.devices, trainer.num_nodes, trainer.strategy) == (4, 2, "ddp")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")  # torchrun's count wins where both are set
    assert compose_train(["trainer=ddp_cpu_launched"]).trainer.devices == 8


def test_sbatch_template_runs_one_task_per_gpu_and_requeues():
    text = (ROOT / "scripts" / "slurm" / "train.sbatch").read_text()
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "slurm" / "train.sbatch")], check=True)
    flags = dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(\S+))?", text, flags=re.M))
    assert flags["ntasks-per-node"] == flags["gpus-per-node"] and flags["signal"].startswith("USR1@")
    assert "requeue" in flags and "srun python train.py trainer=ddp_launched" in text


def test_srun_ranks_share_one_run_folder_that_survives_a_requeue(monkeypatch):
    for key in ("TORCHELASTIC_RUN_ID", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_NTASKS", "2")
    folder = "hydra.run.dir=${paths.log_dir}/${task_name}/runs/slurm-77"
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert shared_run_dir(["model=llama"]) == ["model=llama", folder]
    monkeypatch.setenv("SLURM_PROCID", "1")  # only rank 0 writes .hydra/
    assert shared_run_dir(["model=llama"]) == ["model=llama", "hydra.output_subdir=null", folder]
    assert shared_run_dir(["hydra.run.dir=x"]) == ["hydra.run.dir=x", "hydra.output_subdir=null"]
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert shared_run_dir(["model=llama"]) == ["model=llama"]


@pytest.mark.parametrize(
    "strategy",
    # ddp: Lightning reruns train.py for rank 1, which in a multirun would rerun the whole sweep in new folders
    [pytest.param("ddp", id="ddp"), pytest.param("ddp_spawn", id="ddp_spawn", marks=pytest.mark.slow)],
)
def test_multirun_with_ddp_ranks_makes_one_folder_per_sweep_point(strategy, data_dir, tmp_path):
    logs = tmp_path / "logs"
    proc = run_entry(
        "train.py",
        "-m",
        "trainer=ddp_cpu",
        f"trainer.strategy={strategy}",
        "seed=1,2",
        *TINY,
        f"paths.data_dir={data_dir}",
        f"paths.log_dir={logs}",
        cwd=tmp_path,
    )
    assert (proc.stdout + proc.stderr).count("MEMBER: 2/2") == 2  # each sweep point trained on two ranks
    assert subfolders(logs / "train") == ["multiruns"]  # no rank made a run folder of its own
    (sweep,) = (logs / "train" / "multiruns").iterdir()
    assert subfolders(sweep) == ["0", "1"]
    for job in ("0", "1"):
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
    assert re.search(r"│ 1\s+│.*│ \d\.\d{4}\s+│", proc.stdout), "the sweep table lacks job 1's val/nll"


def torchrun(*launch: str, train: list[str], cwd: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", *launch, str(ROOT / "train.py"), *train]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(proc: subprocess.Popen) -> str:
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out[-6000:]
    return out


def test_torchrun_two_ranks_train_into_one_run_folder(data_dir, tmp_path):
    train = ["trainer=ddp_cpu_launched", *TINY, f"paths.data_dir={data_dir}", f"paths.log_dir={tmp_path / 'logs'}"]
    out = finished(torchrun("--standalone", "--nproc-per-node", "2", train=train, cwd=tmp_path))
    assert "MEMBER: 2/2" in out
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()  # one folder for both ranks
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / ".hydra" / "config.yaml").is_file()
    assert OmegaConf.load(run / "checkpoints" / "config.yaml").trainer.devices == 2


@pytest.mark.slow
def test_torchrun_on_two_nodes_trains_into_one_run_folder(data_dir, trained_run, tmp_path):
    """Two torchrun agents, as on two machines, meeting at a c10d rendezvous: one process each. (Each node's
    first rank prepares the data; trained_run has left the tiny corpus's token store ready for both.)"""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    launch = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-id", "audiolm-test"]
    launch += ["--rdzv-endpoint", f"127.0.0.1:{port}"]
    train = ["trainer=ddp_cpu_launched", *TINY, f"paths.data_dir={data_dir}", f"paths.log_dir={tmp_path / 'logs'}"]
    nodes = [torchrun(*launch, train=train, cwd=tmp_path) for _ in range(2)]
    out = "".join(finished(node) for node in nodes)
    assert "MEMBER: 2/2" in out
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    config = OmegaConf.load(run / "checkpoints" / "config.yaml").trainer
    assert (config.devices, config.num_nodes) == (1, 2) and (run / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_two_point_sweep(data_dir, tmp_path):
    run_entry(
        "train.py",
        "-m",
        "hydra/launcher=submitit_local",
        "seed=1,2",
        *TINY,
        f"paths.data_dir={data_dir}",
        f"hydra.sweep.dir={tmp_path}",
        cwd=tmp_path,
    )
    assert subfolders(tmp_path) == [".submitit", "0", "1"]
    for job in ("0", "1"):
        assert (tmp_path / job / "checkpoints" / "last.ckpt").is_file()
    results = sorted((tmp_path / ".submitit").glob("*/*_result.pkl"))
    assert len(results) == 2
    for result in results:
        status, job_return = pickle.loads(result.read_bytes())
        assert status == "success" and isinstance(job_return.return_value, float)  # val/nll back to the sweep
