"""Reference data for the fleet model, read from ``../shared/data`` (or ``$HYPERION_DATA``).

Owns the parsing of the price table, the Spot Advisor bands, the published service
figures, the Azure LLM inference arrival traces and (only when present) the Alibaba GPU
trace, and every assumption made where the data is silent; each assumption is named
where it is made. Nothing here ships the Alibaba traces (no licence): they are read only
when the file exists, and the model runs without them.

Files are parsed once per process (``functools.cache``); the returned objects are
immutable.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from hyperion.datafiles import DataError, data_dir, find

PRICES_FILE = "cloud_prices.csv"
SPOT_FILE = "aws_spot_advisor_snapshot_2024-02.csv"
SERVICE_FILE = "service_times.csv"
TRACE_FILES = ("azure_llm_inference_trace_2023_conv.csv", "azure_llm_inference_trace_2023_code.csv")
ALIBABA_PODS_FILE = "alibaba_gpu_v2023_openb_pod_list_default.csv"

# Regions of the price table that the RTT matrix lacks, and the measured region used for
# them (same cloud, nearest site): Azure westus2 (Washington) -> westus (California).
RTT_PROXY: Mapping[str, str] = MappingProxyType({"azure:westus2": "azure:westus"})

# GCP GPU rows price the accelerator only (MANIFEST): each GPU gets an n2-standard-8 host
# (8 vCPU, 32 GiB) at that region's on-demand or spot price. An assumption: GCP's own
# bundles (a2/a3/g2) differ in shape and price.
GCP_HOST_TYPE = "n2-standard-8"
GCP_HOST_VCPUS = 8
GCP_HOST_MEMORY_GIB = 32

# For the Spot Advisor lookup: the AWS instance type that carries each GPU model.
AWS_TYPE_OF_MODEL: Mapping[str, str] = MappingProxyType(
    {
        "T4": "g4dn.xlarge",
        "A10G": "g5.xlarge",
        "L4": "g6.xlarge",
        "V100": "p3.2xlarge",
        "V100-32GB": "p3.2xlarge",
        "A100": "p4d.24xlarge",
        "A100-80GB": "p4d.24xlarge",
        "H100": "p5.48xlarge",
        "": "m5.xlarge",
    }
)
DEFAULT_BAND = 2  # 10-15 %/month, the middle band, where no lookup succeeds


@dataclass(frozen=True, slots=True)
class PriceRow:
    cloud: str
    region: str
    instance_type: str
    gpu_model: str  # "" for CPU-only
    gpus: int
    vcpus: int
    memory_gib: float
    ondemand_usd_per_h: float
    spot_usd_per_h: float

    @property
    def cloud_region(self) -> str:
        return f"{self.cloud}:{self.region}"


def _path(name: str) -> Path:
    return find(name)


@functools.cache
def prices() -> tuple[PriceRow, ...]:
    """Every row of ``cloud_prices.csv``, GCP accelerator rows with their host VM added."""
    path = _path(PRICES_FILE)
    try:
        with path.open(newline="") as f:
            raw = list(csv.DictReader(f))
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from e
    return price_rows(raw, str(path))


def price_rows(raw: Sequence[Mapping[str, str]], where: str) -> tuple[PriceRow, ...]:
    """Rows with ``cloud_prices.csv``'s columns (as ``csv.DictReader`` gives them) as
    PriceRows, GCP accelerator rows with their host VM added; ``where`` names the table
    in errors. Also used for tables embedded elsewhere (``hyperion.cli.fleetspec``)."""
    hosts = {
        (r["region"], r["instance_type"]): r
        for r in raw
        if r.get("cloud") == "gcp" and r.get("instance_type") == GCP_HOST_TYPE
    }
    rows: list[PriceRow] = []
    try:
        for r in raw:
            gpus = int(r["gpu_count"] or 0)
            vcpus = int(r["vcpus"] or 0)
            mem = float(r["memory_gib"] or 0)
            od, spot = float(r["ondemand_usd_per_h"]), float(r["spot_usd_per_h"])
            itype = r["instance_type"]
            if r["cloud"] == "gcp" and gpus and not itype:
                host = hosts.get((r["region"], GCP_HOST_TYPE))
                if host is None:
                    continue
                vcpus, mem = GCP_HOST_VCPUS * gpus, GCP_HOST_MEMORY_GIB * gpus
                od += gpus * float(host["ondemand_usd_per_h"])
                spot += gpus * float(host["spot_usd_per_h"])
                itype = f"{GCP_HOST_TYPE}+{r['gpu_model']}x{gpus}"
            rows.append(
                PriceRow(r["cloud"], r["region"], itype, r["gpu_model"], gpus, vcpus, mem, od, spot)
            )
    except (KeyError, ValueError) as e:
        raise DataError(f"malformed {where}: {e}") from e
    if not rows:
        raise DataError(f"{where} has no rows")
    return tuple(rows)


@functools.cache
def spot_bands() -> Mapping[tuple[str, str], int]:
    """(AWS region, instance type) -> Spot Advisor interruption band 0..4."""
    path = _path(SPOT_FILE)
    out: dict[tuple[str, str], int] = {}
    try:
        with path.open(newline="") as f:
            for r in csv.DictReader(f):
                out[(r["region"], r["instance_type"])] = int(r["interruption_band_idx"])
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}") from e
    return MappingProxyType(out)


@functools.cache
def band_for(row: PriceRow, nearest_aws_region: str) -> int:
    """The interruption band of a price row.

    AWS rows: the advisor's band for (region, instance type), else that type's median
    band over all regions. GCP and Azure publish no such table in our data: they take the
    band of the AWS instance type with the same GPU model in the nearest AWS region (by
    measured RTT), an assumption that only says "this GPU is as contended here".
    """
    bands = spot_bands()
    itype = row.instance_type if row.cloud == "aws" else AWS_TYPE_OF_MODEL.get(row.gpu_model, "")
    region = row.region if row.cloud == "aws" else nearest_aws_region
    if (region, itype) in bands:
        return bands[(region, itype)]
    same_type = sorted(b for (_, t), b in bands.items() if t == itype)
    return same_type[len(same_type) // 2] if same_type else DEFAULT_BAND


# ResNet-50, PyTorch AMP, batch 1 on T4: 12.96 ms (service_times.csv, DeepLearningExamples).
# Other GPUs scale it by the MLPerf single-stream latency ratio to T4 where published,
# else by the offline-throughput (or PyTorch peak-throughput) ratio; H100 has no figure
# and is given A100's (an assumption that undersells it).
REFERENCE_GPU = "T4"
_INFERENCE_SOURCE: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "T4": ("T4", "singlestream"),
        "L4": ("L4", "singlestream"),
        "A100": ("A100-PCIe-80GB", "singlestream"),
        "A100-80GB": ("A100-PCIe-80GB", "singlestream"),
        "H100": ("A100-PCIe-80GB", "singlestream"),
        "Jetson-AGX-Orin": ("Jetson-AGX-Orin", "singlestream"),
        "Jetson-AGX-Xavier": ("Jetson-AGX-Xavier", "singlestream"),
        "A10G": ("A10", "offline"),
        "V100": ("V100", "pytorch_peak"),
        "V100-32GB": ("V100", "pytorch_peak"),
    }
)
# BERT-base fine-tuning samples/s (lambdal fp16, 1 GPU). A10G is given A10's figure;
# T4 = 0.5 x A10 and L4 = 0.7 x A10 are assumptions (no published figure in the data);
# cloud H100s (p5, a3) are SXM parts.
_BERT_SOURCE: Mapping[str, str] = MappingProxyType(
    {
        "A10G": "A10",
        "V100": "V100-16GB",
        "V100-32GB": "V100-16GB",
        "A100": "A100-40GB-PCIe",
        "A100-80GB": "A100-80GB-SXM",
        "H100": "H100-SXM",
    }
)
_BERT_ASSUMED_RATIO_OF_A10: Mapping[str, float] = MappingProxyType({"T4": 0.5, "L4": 0.7})


@dataclass(frozen=True, slots=True)
class ServiceFigures:
    inference_ms: Mapping[str, float]  # GPU model -> mean ResNet-50 batch-1 service time
    bert_samples_per_s: Mapping[str, float]  # GPU model -> BERT-base fine-tuning throughput


@functools.cache
def service_figures() -> ServiceFigures:
    path = _path(SERVICE_FILE)
    fig: dict[tuple[str, str, str], float] = {}
    try:
        with path.open(newline="") as f:
            for r in csv.DictReader(f):
                if r["framework"] == "pytorch-fp32":
                    continue  # the service runs PyTorch AMP; fp32 is not modelled
                fig[(r["workload"], r["gpu_model"], r["metric"])] = float(r["value"])
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}") from e
    inf = "resnet50-inference"
    try:
        t4_batch1_ms = fig[(inf, "T4", "batch1_latency")]
        t4_single = fig[(inf, "T4", "singlestream_latency_p90")]
        t4_offline = fig[(inf, "T4", "offline_throughput")]
        t4_peak = fig[(inf, "T4", "peak_throughput")]
        inference: dict[str, float] = {}
        for model, (src, how) in _INFERENCE_SOURCE.items():
            if how == "singlestream":
                ratio = fig[(inf, src, "singlestream_latency_p90")] / t4_single
            elif how == "offline":
                ratio = t4_offline / fig[(inf, src, "offline_throughput")]
            else:
                ratio = t4_peak / fig[(inf, src, "peak_throughput")]
            inference[model] = t4_batch1_ms * ratio
        bert = {
            m: fig[("bert-base-finetune", s, "train_throughput")] for m, s in _BERT_SOURCE.items()
        }
        a10 = fig[("bert-base-finetune", "A10", "train_throughput")]
    except KeyError as e:
        raise DataError(f"{path} lacks the figure {e}") from e
    for model, ratio in _BERT_ASSUMED_RATIO_OF_A10.items():
        bert[model] = ratio * a10
    return ServiceFigures(MappingProxyType(inference), MappingProxyType(bert))


FloatArray = npt.NDArray[np.float64]


def _seconds(stamp: str) -> float:
    # "2023-11-16 18:15:46.6805900": 7 fractional digits, more than fromisoformat takes
    head, _, frac = stamp.partition(".")
    return datetime.fromisoformat(head).timestamp() + float("0." + (frac or "0"))


@functools.cache
def arrival_shapes() -> tuple[FloatArray, ...]:
    """Each Azure LLM inference trace as arrival times in [0, 1) (fractions of its span)."""
    out = []
    for name in TRACE_FILES:
        path = _path(name)
        try:
            with path.open(newline="") as f:
                t = np.array([_seconds(r["TIMESTAMP"]) for r in csv.DictReader(f)])
        except (OSError, KeyError, ValueError) as e:
            raise DataError(f"cannot read {path}: {e}") from e
        if t.size < 2:
            raise DataError(f"{path} has too few arrivals")
        t = np.sort(t - t.min())
        span = t[-1] * (1 + 1 / t.size)
        out.append(t / span)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class BackgroundPods:
    """Pods of the Alibaba openb GPU trace (Weng et al., ATC'23): their requests."""

    cpu_millis: npt.NDArray[np.int64]
    memory_mib: npt.NDArray[np.int64]
    gpus: npt.NDArray[np.int64]  # whole devices a pod holds (a fractional share blocks one)


@functools.cache
def alibaba_pods() -> BackgroundPods | None:
    """The Alibaba pod requests, or None when the trace is absent. The trace has no
    licence: it never ships and is read only from the shared data directory."""
    d = data_dir()
    if d is None or not (d / ALIBABA_PODS_FILE).is_file():
        return None
    cpu, mem, gpu = [], [], []
    try:
        with (d / ALIBABA_PODS_FILE).open(newline="") as f:
            for r in csv.DictReader(f):
                cpu.append(int(r["cpu_milli"]))
                mem.append(int(r["memory_mib"]))
                gpu.append(int(r["num_gpu"] or 0))
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"cannot read the Alibaba trace in {d}: {e}") from e
    if not cpu:
        return None
    return BackgroundPods(np.array(cpu), np.array(mem), np.array(gpu))
