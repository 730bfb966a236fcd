"""WSD schedules and branched cooldowns: the branch equals the one-piece run, FLOPs are counted once,
a killed trunk resumes from its checkpoint, unique tokens are counted."""

import math

import numpy as np
import pytest

from scalinglab.errors import ConfigError, DataError
from scalinglab.families.lm.schedule import wsd_lr_at
from scalinglab.families.lm.train import FAMILY, TokenBatches
from scalinglab.families.lm.wsd import checkpoints_beside, run_wsd_sweep, wsd_isoflop_design
from scalinglab.store import RunStore, run_key

SEQ = 4 * 16  # batch_size x context of the tiny runs


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A word-salad corpus, its bytes-token data, and the shared settings of tiny fp32 runs."""
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
    (tmp_path / "corpus.txt").write_text("\n".join(" ".join(rng.choice(words, 8)) + "." for _ in range(120)))
    run = {"size": "d16-l1", "context": 16, "batch_size": 4, "tokenizer": "bytes", "noise_splits": 2,
           "corpus": str(tmp_path / "corpus.txt"), "eval_tokens": 512, "precision": "fp32"}
    return run, FAMILY.load_data({**run, "tokens": SEQ})


def test_wsd_schedule_holds_the_peak_then_cools_down_to_the_floor():
    peak, floor = 1e-3, 1e-4
    lr = lambda s, total, k, shape="1-sqrt": wsd_lr_at(s, total_steps=total, peak=peak, warmup=5,  # noqa: E731
                                                        floor=floor, cooldown_steps=k, shape=shape)
    assert [lr(s, 100, 20) for s in (0, 4, 50, 79)] == [peak / 5, peak, peak, peak]
    assert lr(99, 100, 20) == floor and lr(99, 100, 20, "linear") == floor
    # Halfway through the cooldown: 1 - sqrt(1/2) of the way down for 1-sqrt, half for linear.
    assert lr(89, 100, 20) == pytest.approx(floor + (peak - floor) * (1 - math.sqrt(0.5)))
    assert lr(89, 100, 20, "linear") == pytest.approx((peak + floor) / 2)
    # Before its cooldown a run's LR does not depend on its length: a longer trunk can stand in for it.
    assert [lr(s, 100, 20) for s in range(80)] == [lr(s, 400, 0) for s in range(80)]


def test_branched_cooldown_equals_the_run_trained_in_one_piece(tiny, tmp_path, monkeypatch):
    run, data = tiny
    monkeypatch.setenv("SCALINGLAB_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    common = {**run, "schedule": "wsd", "warmup_steps": 3, "seed": 1}
    whole = {**common, "tokens": 40 * SEQ, "cooldown": 0.25}           # 30 constant steps, 10 cooling down
    trunk = {**common, "tokens": 36 * SEQ, "cooldown": 0.0, "checkpoint_steps": [30]}
    branch = {**common, "tokens": 40 * SEQ, "parent": run_key("lm", trunk), "branch_step": 30}
    assert FAMILY.config(whole).cooldown_steps == FAMILY.config(branch).cooldown_steps == 10
    one = FAMILY.train(whole, data)
    FAMILY.train(trunk, data)
    two = FAMILY.train(branch, data)
    assert two.val_loss == pytest.approx(one.val_loss, rel=1e-5, abs=1e-6)
    assert two.val_acc == pytest.approx(one.val_acc, abs=1e-9)
    assert two.examples == one.examples == 40 * SEQ
    # The cooldown's own LRs are the one-piece run's.
    tail = {t: lr for t, lr in one.metrics["lr_curve"] if t > 30 * SEQ}
    assert all(tail[t] == pytest.approx(lr, rel=1e-12) for t, lr in two.metrics["lr_curve"] if t in tail)
    assert two.metrics["lr_curve"][-1][1] == pytest.approx(0.1 * two.metrics["lr"])
    # A branch that does not continue its trunk is refused with the setting named.
    with pytest.raises(ConfigError, match="differs from its trunk in seed"):
        FAMILY.train({**branch, "seed": 2}, data)
    with pytest.raises(DataError, match="no checkpoint at step 20"):
        FAMILY.train({**branch, "branch_step": 20}, data)


def test_flops_are_counted_once(tiny, tmp_path):
    run, _ = tiny
    cosine = [{**run, "size": size, "tokens": float(n * SEQ), "seed": 0}
              for size in ("d16-l1", "d24-l1") for n in (10, 20, 40)]
    design = wsd_isoflop_design(cosine, cooldown=0.2)
    assert len(design.trunks) == 2 and len(design.branches) == 6
    assert sorted(design.trunks[0]["checkpoint_steps"]) == [8, 16, 32]
    with RunStore(tmp_path / "runs.db") as store:
        first, second = run_wsd_sweep(store, "wsd", design, workers=0, progress=False)
        assert (first.ran, second.ran) == (2, 6)
        runs = store.runs(study="wsd", status="complete")
    assert (tmp_path / "runs.db.ckpt").is_dir()
    by_key = {r["key"]: r for _, r in runs.iterrows()}
    fpt = {size: FAMILY.config({**run, "size": size, "tokens": 1}).model_config() for size in ("d16-l1", "d24-l1")}
    from scalinglab.families.lm.model import flops_per_token
    for _, r in runs.iterrows():
        m, per_token = r["metrics"], flops_per_token(fpt[r["size"]])["train"]
        if m["role"] == "branch":
            trunk = by_key[m["parent"]]
            assert r["flops"] == per_token * (m["steps"] - m["branch_step"]) * SEQ  # the cooldown only
            assert m["trunk_flops"] == per_token * m["branch_step"] * SEQ <= trunk["flops"]
            assert m["model_flops"] == per_token * r["examples"]  # the model's whole training
            assert m["cooldown_steps"] == round(0.2 * m["steps"])
        else:
            assert m["role"] == "trunk" and r["flops"] == m["model_flops"] == per_token * 32 * SEQ
    # The study's cost is the trunks plus the cooldowns: 32 + 0.2 x (10 + 20 + 40) steps per size,
    # where per-budget cosine runs would train 70.
    for size in ("d16-l1", "d24-l1"):
        own = runs[runs["size"] == size]["flops"].sum()
        per_token = flops_per_token(fpt[size])["train"]
        assert own == per_token * (32 + 2 + 4 + 8) * SEQ
        assert own < 0.7 * sum(FAMILY.cost(c) for c in cosine if c["size"] == size)


def test_killed_trunk_resumes_from_its_last_checkpoint(tiny, tmp_path, monkeypatch):
    run, data = tiny
    trunk = {**run, "schedule": "wsd", "warmup_steps": 3, "tokens": 30 * SEQ, "cooldown": 0.0,
             "checkpoint_steps": [10, 20]}
    key = run_key("lm", trunk)
    with checkpoints_beside(tmp_path / "a.db") as root:
        whole = FAMILY.train(trunk, data)
        assert sorted(p.name for p in (root / key).iterdir()) == ["step-10.pt", "step-20.pt"]
    calls = {"n": 0}
    real_next = TokenBatches.next

    def dies_at_step_25(self):
        calls["n"] += 1
        if calls["n"] > 25:
            raise KeyboardInterrupt("killed")
        return real_next(self)

    with checkpoints_beside(tmp_path / "b.db") as root:
        monkeypatch.setattr(TokenBatches, "next", dies_at_step_25)
        with pytest.raises(KeyboardInterrupt):
            FAMILY.train(trunk, data)
        monkeypatch.setattr(TokenBatches, "next", real_next)
        assert sorted(p.name for p in (root / key).iterdir()) == ["step-10.pt", "step-20.pt"]  # no temp files
        calls["n"] = 0
        resumed = FAMILY.train(trunk, data)
    assert resumed.metrics["resumed_from_step"] == 20 and whole.metrics["resumed_from_step"] is None
    assert resumed.val_loss == pytest.approx(whole.val_loss, rel=1e-6)
    np.testing.assert_allclose(resumed.curve, whole.curve, rtol=1e-6)
    assert resumed.metrics["unique_tokens"] == whole.metrics["unique_tokens"]


def test_unique_tokens_and_epochs(tiny):
    run, data = tiny
    n = len(data.train)
    short = FAMILY.train({**run, "tokens": 10 * SEQ}, data).metrics
    assert short["unique_tokens"] <= 10 * (SEQ + 4) and short["epochs"] == pytest.approx(10 * SEQ / n)
    long_steps = 3 * n // SEQ + 1
    long = FAMILY.train({**run, "tokens": long_steps * SEQ}, data).metrics
    assert 0.95 * n <= long["unique_tokens"] <= n  # three epochs see (nearly) the whole stream
    assert long["epochs"] > 3 and long["repetitions"] == pytest.approx(long_steps * SEQ / long["unique_tokens"])
    capped = FAMILY.train({**run, "tokens": 20 * SEQ, "max_unique_tokens": 300}, data).metrics
    assert capped["train_tokens_available"] == 300 and 290 <= capped["unique_tokens"] <= 300  # the cap, no more
    assert capped["epochs"] == pytest.approx(20 * SEQ / 300)


def test_wsd_settings_are_checked():
    base = {"size": "d16-l1", "tokens": 1e5}
    with pytest.raises(ConfigError, match="parent and branch_step go together"):
        FAMILY.config({**base, "schedule": "wsd", "parent": "0" * 20})
    with pytest.raises(ConfigError, match="parent needs schedule = 'wsd'"):
        FAMILY.config({**base, "parent": "0" * 20, "branch_step": 5})
    with pytest.raises(ConfigError, match="init_from and init_step go together"):
        FAMILY.config({**base, "init_from": "0" * 20})
    with pytest.raises(ConfigError, match="branch_step .* must be below"):
        FAMILY.config({**base, "schedule": "wsd", "parent": "0" * 20, "branch_step": 10_000})
    with pytest.raises(ConfigError, match="cooldown_shape"):
        FAMILY.config({**base, "schedule": "wsd", "cooldown_shape": "cosine"})
    with pytest.raises(ConfigError, match="need a checkpoint folder"):
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("SCALINGLAB_CHECKPOINT_DIR", raising=False)
            from scalinglab.families.lm.checkpoint import checkpoint_root
            checkpoint_root()


def test_every_run_is_also_scored_on_held_out_stdlib_code(tiny):
    run, data = tiny
    m = FAMILY.train({**run, "tokens": 10 * SEQ}, data).metrics
    assert m["second_eval"] == "python-stdlib" and math.log(256) - 1 < m["second_val_loss"] < 8
    off = FAMILY.train({**run, "tokens": 10 * SEQ, "second_eval": ""}, data).metrics
    assert off["second_val_loss"] is None
