"""benchmarks/train/train_mfu_gpu.py: the --tiny CPU path runs end to end and its FLOPs arithmetic is the documented one."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train" / "train_mfu_gpu.py"


def test_tiny_run_and_flops_formula(tmp_path, capsys):
    mod = runpy.run_path(str(SCRIPT), run_name="train_mfu_gpu")
    out = tmp_path / "mfu.json"
    assert mod["main"](["--tiny", "--warmup", "1", "--steps", "1", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["provenance"]["stage"] == "train" and res["provenance"]["config"]["tiny"]
    (r,) = res["results"]
    assert not r["oom"] and r["batch"] == 16 and r["seq_len"] == 64 and r["tokens_per_second"] > 0
    p = r["linear_params"]
    # tiny shape: Mistral 2 x (q 64x64, k/v 64x32, o 64x64, gate/up/down 64x224) + lm_head 512x64
    assert p["lm_frozen"] == 2 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 224) + 512 * 64
    assert p["lm_lora"] == 2 * 8 * (
        (64 + 64) * 2 + (64 + 32) * 2 + 3 * (64 + 224)
    )  # r=8: A (r x in) + B (out x r)
    assert p["vision_used"] == 2 * (4 * 64 * 64 + 2 * 64 * 128)  # 3 layers, features of layer -2: 2 used
    assert p["projector"] == 64 * 64 + 64 * 64
    s, pairs, s_v = 64, 64 * 65 / 2, 17
    expect = (
        s * (4 * p["lm_frozen"] + 6 * p["lm_lora"])
        + 12 * 2 * 64 * pairs
        + 2 * p["vision_used"] * s_v
        + 4 * s_v**2 * 64 * 2
        + 6 * p["projector"] * 16
    )
    assert abs(r["model_tflops_per_step"] * 1e12 - 16 * expect) / (16 * expect) < 1e-3
    assert r["mfu"] > 0 and "MFU" in capsys.readouterr().out
