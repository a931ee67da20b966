"""The noise-aware verdict (kit.validate.noise, ``kit compare --reference-runs``) on the shipped reference ensembles and
on ModelZoo/DeiT/mmengine logs, the two-run divergence step, and the numerics switches (kit.train.perturb)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import kit.cli
from kit.config import recipes
from kit.core.errors import UserError
from kit.train import perturb
from kit.validate import compare_curves, first_sustained, format_report, noise, plot_comparison
from kit.validate.logformats import Curve, read_curve
from kit.workshop.assets import modelzoo_logs_dir, reference_ensemble_paths

HIVIT = reference_ensemble_paths("workshop_hivit")
CAIT = reference_ensemble_paths("workshop_cait")
LOGS = modelzoo_logs_dir()
#: The keys `kit compare --json` has always printed: the two-argument form must keep exactly these.
TWO_RUN_KEYS = {
    "n_points", "legacy", "strict", "passed", "verdict", "alignment", "n_missing", "n_dropped", "n_skipped",
    "smooth", "skip", "thresholds", "verdicts_disagree", "disagreement", "notes", "reference", "candidate",
}  # fmt: skip


def run_cli(*args) -> int:
    return kit.cli.main(["compare", *map(str, args)])


def write_metrics(path, steps, losses):
    path.write_text("".join(json.dumps({"step": int(s), "loss": float(v)}) + "\n" for s, v in zip(steps, losses)))
    return path


def changed(curve: Curve, losses) -> Curve:
    return Curve(steps=curve.steps, losses=np.asarray(losses, dtype=float), format="synthetic", path="candidate")


# ---------------------------------------------------------------- the shipped ensembles


def test_shipped_ensembles_are_150_steps_of_5_members():
    for paths in (HIVIT, CAIT):
        assert len(paths) == 5
        curves = [read_curve(p) for p in paths]
        assert all(c.format == "kit-metrics" and c.steps.tolist() == list(range(150)) for c in curves)
        assert curves[0].losses[0] == pytest.approx(np.log(10), rel=0.01)  # ten classes, a fresh model
    assert len(reference_ensemble_paths("workshop_hivit", "seed")) == 4


def test_healthy_member_passes_every_fold(capsys):
    curves = [read_curve(p) for p in HIVIT]
    for i in range(5):  # each member judged against the other four
        refs = curves[:i] + curves[i + 1 :]
        v = compare_curves(refs[0], curves[i], reference_runs=refs[1:], verdict="noise").noise
        assert v.passed and v.n_references == 4 and v.first_divergence_step is None, v.reasons()
    assert run_cli(HIVIT[0], HIVIT[4], "--reference-runs", *HIVIT[1:4], "--verdict", "noise") == 0
    out = capsys.readouterr().out
    assert "within run-to-run noise" in out and "verdict: PASS (noise-aware rule, --verdict noise)" in out


def test_scaled_by_097_fails_noise_aware_and_passes_modelzoo(tmp_path, capsys):
    member = read_curve(HIVIT[4])
    low = write_metrics(tmp_path / "low.jsonl", member.steps, member.losses * 0.97)
    args = (HIVIT[0], low, "--reference-runs", *HIVIT[1:4])
    assert run_cli(*args, "--verdict", "legacy") == 0
    assert run_cli(*args, "--verdict", "noise") == 1
    out = capsys.readouterr().out
    assert "outside run-to-run noise" in out and "verdict: FAIL (noise-aware rule, --verdict noise)" in out
    run_cli(*args, "--json")  # the default verdict stays the strict rule
    result = json.loads(capsys.readouterr().out)
    assert result["legacy"]["passed"] and not result["noise"]["passed"] and result["verdict"] == "strict"


def test_divergent_run_fails_and_names_its_divergence_step(tmp_path, capsys):
    member = read_curve(HIVIT[4])
    ramp = 1 + 0.01 * np.clip(member.steps - 80, 0, None)  # from step 80 the loss climbs away, 1 % a step
    run = write_metrics(tmp_path / "diverged.jsonl", member.steps, member.losses * ramp)
    assert run_cli(HIVIT[0], run, "--reference-runs", *HIVIT[1:4], "--verdict", "noise", "--json") == 1
    result = json.loads(capsys.readouterr().out)["noise"]
    # the members spread by ~6 % (one sigma) over steps 80-150 and four references make a wide Student-t band, so a
    # climb of 1 % a step clears it after some 20-30 steps (step 109 with the ensembles of the 40-epoch recipe)
    assert not result["passed"] and 80 <= result["first_divergence_step"] <= 115
    c = compare_curves(read_curve(HIVIT[0]), read_curve(run))
    assert c.first_divergence_step is not None and c.first_divergence_step >= 80  # the two-run figure too
    assert f"first divergence: step {c.first_divergence_step} (" in format_report(c)

    blown = member.losses.copy()
    blown[120:] = np.nan  # a run whose loss became NaN: outside from there on
    v = compare_curves(read_curve(HIVIT[0]), changed(member, blown), reference_runs=[read_curve(HIVIT[1])]).noise
    assert not v.passed and v.first_divergence_step == 120 and v.to_dict()["offset"] is None


def test_json_keys(capsys):
    assert run_cli(HIVIT[0], HIVIT[4], "--json") == 1  # two healthy runs 150 steps long: the strict rule fails them
    two_run = json.loads(capsys.readouterr().out)
    assert set(two_run) == TWO_RUN_KEYS  # the old two-argument form: the same keys as ever
    assert run_cli(HIVIT[0], HIVIT[4], "--reference-runs", *HIVIT[1:4], "--json") == 1  # the default verdict: strict
    out = json.loads(capsys.readouterr().out)
    assert set(out) == TWO_RUN_KEYS | {"noise"}
    assert {k: out[k] for k in TWO_RUN_KEYS} == two_run  # extra references change none of the old figures
    n = out["noise"]
    assert {"n_references", "outside_fraction", "first_divergence_step", "passed"} <= set(n)
    assert n["n_references"] == 4 and n["first_divergence_step"] is None and n["passed"] is True
    assert isinstance(n["outside_fraction"], float) and len(n["reference_offsets"]) == 4


# ---------------------------------------------------------------- the rule itself


def test_offset_just_inside_the_ensembles_limit_passes_and_just_outside_fails():
    """Against the shipped ensemble, the held-out member moved so that its systematic offset is just inside the limit
    the verdict reports passes the offset test, and just outside fails it, saying so; the limit follows the spread
    of the references (a more spread ensemble tolerates more)."""
    refs, member = [read_curve(p) for p in HIVIT[:4]], read_curve(HIVIT[4])

    def verdict(shift: float, references=refs):  # the member moved by a constant factor exp(shift)
        moved = changed(member, member.losses * np.exp(shift))
        return compare_curves(references[0], moved, reference_runs=references[1:], verdict="noise").noise

    v = verdict(0.0)
    assert v.passed and 0.005 < v.offset_limit < 0.1  # a few percent: the ensemble's spread, not a blanket tolerance
    inside, outside = verdict(0.8 * v.offset_limit - v.offset), verdict(1.2 * v.offset_limit - v.offset)
    assert inside.offset == pytest.approx(0.8 * v.offset_limit) and inside.offset_passed
    assert not any("systematic offset" in r for r in inside.reasons())
    assert outside.offset == pytest.approx(1.2 * v.offset_limit) and outside.offset_passed is False
    assert not outside.passed and any("systematic offset" in r for r in outside.reasons())

    # the same runs, each moved three times as far from the others as it is (its leave-one-out offset)
    spread = [changed(r, r.losses * np.exp(3 * level)) for r, level in zip(refs, v.reference_offsets)]
    wider = verdict(0.0, spread)
    assert wider.offset_limit > 2 * v.offset_limit
    assert verdict(1.2 * v.offset_limit - wider.offset, spread).offset_passed  # out of the narrow limit, in the wide


def test_floor_keeps_identical_references_from_failing_tiny_differences():
    steps = np.arange(30)
    refs = np.tile(np.linspace(2.3, 2.0, 30), (3, 1))  # references that agree to the bit
    assert noise.judge(steps, refs, refs[0] * (1 + 1e-5)).passed  # other rounding: within noise
    assert not noise.judge(steps, refs, refs[0] * 1.01).passed  # 1 %: not rounding


def test_first_sustained():
    assert first_sustained([False, True, True, True], 2) == 1
    assert first_sustained([True, False, True], 2) is None  # the last point alone is noise
    assert first_sustained([True, True], 1) == 0 and first_sustained([False, False], 1) is None
    assert first_sustained([], 1) is None


def test_works_on_modelzoo_deit_and_mmengine_logs(tmp_path, capsys):
    """REFERENCE the ModelZoo's CUDA log; more runs of it (the CUDA curve with 1 % noise) as DeiT console output and
    an mmengine log; candidates: a third such run as mmengine scalars, the SDAA log, and HiViT-base's curve."""
    cuda = read_curve(LOGS / "cait_s24_cuda.log")
    rng = np.random.default_rng(1)

    def noisy() -> np.ndarray:
        return cuda.losses * (1 + rng.normal(0, 0.01, len(cuda)))

    deit, mm, scalars = tmp_path / "deit_console.txt", tmp_path / "mmengine.log", tmp_path / "scalars.json"
    deit.write_text("".join(
        f"Epoch: [0]  [{s:>3}/101]  eta: 0:00:01  lr: 0.000001  loss: {v:.4f} (6.9)  time: 1\n"
        for s, v in zip(cuda.steps, noisy())
    ))  # fmt: skip
    mm.write_text("".join(
        f"05/20 13:34:46 - mmengine - INFO - Epoch(train)  [1][{s:>3}/101]  lr: 1.0e-06  loss: {v:.4f}\n"
        for s, v in zip(cuda.steps, noisy())
    ))  # fmt: skip
    scalars.write_text("".join(json.dumps({"lr": 1e-6, "data_time": 0.1, "loss": v, "step": int(s)}) + "\n"
                               for s, v in zip(cuda.steps, noisy())))  # fmt: skip
    runs = [read_curve(deit), read_curve(mm)]
    assert [r.format for r in runs] + [read_curve(scalars).format] == ["deit-console", "mmengine", "mmengine-scalars"]
    c = compare_curves(cuda, read_curve(scalars), reference_runs=runs)
    assert c.noise.n_references == 3 and c.noise.n_points == 101 and c.alignment == "step" and c.noise.passed
    sdaa = compare_curves(cuda, read_curve(LOGS / "cait_s24_sdaa.log"), reference_runs=runs).noise
    assert sdaa.n_points == 101 and 0 <= sdaa.outside_fraction <= 1
    assert not compare_curves(cuda, read_curve(LOGS / "hivit_base_cuda.log"), reference_runs=runs).noise.passed
    assert run_cli(LOGS / "cait_s24_cuda.log", scalars, "--reference-runs", deit, mm, "--verdict", "noise") == 0
    assert "3 reference curves" in capsys.readouterr().out


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    member = read_curve(HIVIT[0])
    elsewhere = write_metrics(tmp_path / "elsewhere.jsonl", member.steps + 10_000, member.losses)
    cases = [
        ((HIVIT[0], HIVIT[1], "--reference-runs", elsewhere), f"{elsewhere}: no step in common with"),
        ((HIVIT[0], HIVIT[1], "--reference-runs", HIVIT[2], "--skip", "149"), "needs at least 2"),
        ((HIVIT[0], HIVIT[1], "--verdict", "noise"), "--verdict noise needs more runs of the reference setup"),
        ((HIVIT[0], HIVIT[1], "--reference-runs", tmp_path / "missing.jsonl"), "missing.jsonl: no such file"),
    ]
    for args, message in cases:
        assert run_cli(*args) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    zero = write_metrics(tmp_path / "zero.jsonl", [0, 1, 2], [2.0, 0.0, 2.0])
    with pytest.raises(UserError, match="zero.jsonl:2: the reference loss is zero"):
        compare_curves(read_curve(HIVIT[0]), read_curve(HIVIT[1]), reference_runs=[read_curve(zero)])


def test_plot_shades_the_band_and_marks_the_divergence(tmp_path):
    member = read_curve(HIVIT[4])
    ramp = 1 + 0.01 * np.clip(member.steps - 80, 0, None)
    runs = [read_curve(p) for p in HIVIT[1:4]]
    c = compare_curves(read_curve(HIVIT[0]), changed(member, member.losses * ramp), reference_runs=runs)
    fig = plot_comparison(c, tmp_path / "band.png")
    assert (tmp_path / "band.png").read_bytes()[:4] == b"\x89PNG"
    top, bottom = fig.axes
    assert "noise-aware: FAIL" in top.get_title() and top.collections  # the shaded band
    labels = [line.get_label() for line in top.lines]
    assert f"first divergence: step {c.noise.first_divergence_step}" in labels


# ---------------------------------------------------------------- kit.train.perturb


def test_numerics_off_by_default_and_perturbation_is_tiny_seeded_and_leaves_global_rng_alone():
    for name in recipes.list_recipes():
        assert recipes.get_recipe(name)["numerics"] == recipes.NUMERICS_OFF
    torch.manual_seed(0)
    a = torch.nn.Linear(8, 8)
    before = {k: v.clone() for k, v in a.state_dict().items()}
    perturb.apply(a, recipes.NUMERICS_OFF)
    assert all(torch.equal(before[k], v) for k, v in a.state_dict().items())
    state = torch.get_rng_state()
    perturb.apply(a, {"init_perturbation": 1e-4, "seed": 3})
    assert torch.equal(torch.get_rng_state(), state)  # the run's own draws are untouched
    rel = (a.weight - before["weight"]) / before["weight"]
    assert 0 < rel.abs().max() < 1e-3 and torch.equal(a.bias == 0, before["bias"] == 0)
    b = torch.nn.Linear(8, 8)
    b.load_state_dict(before)
    perturb.apply(b, {"init_perturbation": 1e-4, "seed": 3})
    assert torch.equal(a.weight, b.weight)  # same seed, same perturbation
    with pytest.raises(UserError, match="numerics.grad_noise"):
        perturb.apply(b, {"grad_noise": -1})


def test_gradient_noise_multiplies_each_gradient():
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 1, bias=False)
    x = torch.randn(16, 4)
    layer(x).sum().backward()
    clean = layer.weight.grad.clone()
    layer.weight.grad = None
    perturb.apply(layer, {"grad_noise": 1e-3, "seed": 1})
    layer(x).sum().backward()
    rel = (layer.weight.grad - clean) / clean
    assert 0 < rel.abs().max() < 1e-2


def test_data_shuffle_false_reads_the_folders_in_order(tmp_path, make_images):
    """The recipe switch behind notebook 6's "data not shuffled" bug; True (every recipe's default) shuffles."""
    from kit.data.loaders import build_loaders

    root = make_images(tmp_path / "images", classes=2, train_per_class=8, val_per_class=1, size=8)
    cfg = recipes.get_recipe("workshop_hivit")["data"] | {"path": str(root), "cache_images": False, "img_size": 8}
    assert cfg["shuffle"] is True
    for shuffle in (True, False):
        loaders = build_loaders(cfg | {"shuffle": shuffle}, batch_size=4, with_val=False)
        order = loaders.train_sampler.indices()
        assert (order == sorted(order)) is not shuffle
