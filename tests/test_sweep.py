"""`lvmcls.sweep`: a local sweep over two fixture chapters × two seeds, merged; resumption; bad grids; the Slurm
submission checked through a fake `sbatch`. The fixture chapters write their results in a second, so the module
runs in seconds and does not depend on the real chapters."""

from __future__ import annotations

import json
import os
import statistics
import textwrap
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("submitit")
pytest.importorskip("papermill")

from lvmcls import sweep  # noqa: E402
from lvmcls.results import scorecard_markdown  # noqa: E402

# A chapter in miniature: a parameters cell, and results written by the library's `write_results`.
# FIXTURE_FAIL="<stem>:<seed>" makes that run raise, as a crashed chapter would.
FIXTURE = '''
import os
from lvmcls.results import write_results

KNOBS = {"smoke": {"offset": 1.0}, "ci": {"offset": 2.0}}[profile]
if os.environ.get("FIXTURE_FAIL") == f"{STEM}:{seed}":
    raise RuntimeError("fixture failure")
acc = scale * (seed + 1) + KNOBS["offset"]
write_results(STEM, profile=profile, device="cpu", seeds=[seed], data_source="fixture", wall_time_s=0.1,
              metrics={"acc": acc, "per_class": {"a": seed ** 2, "b": None}, "curve": [seed, 2 * seed],
                       "encoder": "mlp"}, paper={"acc": 0.99})
'''


def write_chapter(folder: Path, stem: str):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"},
                                            "language_info": {"name": "python"}})
    params = nbformat.v4.new_code_cell('profile = "auto"\nseed = 0\nscale = 1.0\nwidth = 8')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {stem}"), params,
                nbformat.v4.new_code_cell(f"STEM = {stem!r}\n" + textwrap.dedent(FIXTURE))]
    nbformat.write(nb, folder / f"{stem}.ipynb")


@pytest.fixture
def chapters(tmp_path):
    (tmp_path / "notebooks").mkdir()
    for stem in ("01_alpha", "02_beta"):
        write_chapter(tmp_path / "notebooks", stem)
    return tmp_path


def grid(tmp_path, **kw) -> sweep.Grid:
    base = dict(chapters=["01", "02_beta"], seeds=[3, 7], profile="smoke", notebooks=str(tmp_path / "notebooks"),
                runs=str(tmp_path / "runs"), parallel=4)
    return sweep.Grid(**{**base, **kw})


def test_local_sweep_resume_and_merge(chapters, monkeypatch):
    monkeypatch.setenv("FIXTURE_FAIL", "02_beta:7")
    report = sweep.submit(grid(chapters), echo=lambda *_: None)
    assert sorted(report["done"]) == ["smoke-seed3", "smoke-seed3", "smoke-seed7"]
    (failed, log), = report["failed"]
    assert failed == "02_beta/smoke-seed7" and "fixture failure" in Path(log).read_text()
    runs = chapters / "runs"
    assert not (runs / "02_beta" / "smoke-seed7.json").exists()
    assert (runs / "01_alpha" / "smoke-seed3.ipynb").is_file() and (runs / "01_alpha" / "smoke-seed3.log").is_file()

    # A killed run leaves its notebook and log but no .json: it runs again, the completed runs are skipped.
    (runs / "01_alpha" / "smoke-seed3.json").unlink()
    kept = (runs / "01_alpha" / "smoke-seed7.json").stat().st_mtime_ns
    monkeypatch.delenv("FIXTURE_FAIL")
    report = sweep.submit(grid(chapters), echo=lambda *_: None)
    assert sorted(report["done"]) == ["smoke-seed3", "smoke-seed7"] and not report["failed"]
    assert sorted(report["skipped"]) == ["smoke-seed3", "smoke-seed7"]
    assert (runs / "01_alpha" / "smoke-seed7.json").stat().st_mtime_ns == kept
    assert sweep.submit(grid(chapters), echo=lambda *_: None)["skipped"].__len__() == 4

    out = chapters / "merged"
    slurm = dict(executor="slurm", slurm={"partition": "gpu"})  # the run's own options: merging ignores them
    paths = sweep.merge(grid(chapters, **slurm), out, echo=lambda *_: None)
    assert sorted(p.name for p in paths) == ["01_alpha.json", "02_beta.json"]
    for stem in ("01_alpha", "02_beta"):
        per_run = [json.loads((runs / stem / f"smoke-seed{s}.json").read_text()) for s in (3, 7)]
        assert [r["metrics"]["acc"] for r in per_run] == [5.0, 9.0]  # scale * (seed + 1) + offset
        merged = json.loads((out / f"{stem}.json").read_text())
        accs = [r["metrics"]["acc"] for r in per_run]
        assert merged["metrics"]["acc"] == pytest.approx(statistics.fmean(accs))
        assert merged["metrics_std"]["acc"] == pytest.approx(statistics.stdev(accs))
        assert merged["metrics"]["per_class"] == {"a": 29.0, "b": None}  # mean of 9 and 49; NaN stays missing
        assert merged["metrics_std"]["curve"] == pytest.approx([statistics.stdev([3, 7]), statistics.stdev([6, 14])])
        assert merged["metrics"]["encoder"] == "mlp" and merged["n_runs"] == 2 and merged["seeds"] == [3, 7]
        assert merged["profile"] == "smoke" and merged["paper"] == {"acc": 0.99}
    # The scorecard's `full` column reads the merged record.
    (chapters / "cards" / "full").mkdir(parents=True)
    (out / "01_alpha.json").rename(chapters / "cards" / "full" / "01_alpha.json")
    card = scorecard_markdown("01_alpha", {"acc": 1.0}, {"acc": 0.99}, folder=chapters / "cards")
    assert "| `acc` | 0.99 | 7 ± 2.8 | 1 |" in card


def test_settings_make_their_own_runs(chapters):
    runs = sweep.plan(grid(chapters, chapters=["01"], seeds=[0], settings={"scale": [0.5, 2]}))
    assert [r.run_id for r in runs] == ["smoke-seed0-scale=0.5", "smoke-seed0-scale=2"]
    assert runs[1].parameters == {"profile": "smoke", "seed": 0, "scale": 2}
    both = sweep.plan(grid(chapters, chapters=["01"], seeds=[0], settings={"width": [4], "scale": [0.5, 2]}))
    assert [r.parameters for r in both] == [{"profile": "smoke", "seed": 0, "scale": 0.5, "width": 4},
                                            {"profile": "smoke", "seed": 0, "scale": 2, "width": 4}]
    assert both[0].run_id == "smoke-seed0-scale=0.5-width=4"
    with pytest.raises(sweep.GridError, match="no completed runs of 01_alpha"):
        sweep.merge(grid(chapters, chapters=["01"]), chapters / "m")
    with pytest.raises(sweep.GridError, match="2 settings of 01_alpha"):
        sweep.merge(grid(chapters, chapters=["01"], settings={"scale": [0.5, 2]}), chapters / "m")


@pytest.mark.parametrize("change, message", [
    (dict(chapters=["09_nothing"]), "'09_nothing' is no chapter.*01_alpha, 02_beta"),
    (dict(settings={"hidden": [64]}), "01_alpha has no parameter hidden.*profile, seed, scale, width"),
    (dict(chapters=[]), "the grid is empty"),
    (dict(seeds=[]), "the grid is empty"),
    (dict(settings={"scale": []}), "the grid is empty"),
    (dict(profile="full"), "does not define the 'full' profile"),
    (dict(executor="pbs"), "unknown executor 'pbs'"),
    (dict(slurm={"partition": "gpu"}), "--partition: Slurm option.*for --executor slurm"),
    (dict(executor="slurm"), "`sbatch` is not on PATH"),
])
def test_bad_grids_fail_before_any_job(chapters, monkeypatch, change, message):
    monkeypatch.setenv("PATH", str(chapters))  # no sbatch here
    with pytest.raises(sweep.GridError, match=message):
        sweep.submit(grid(chapters, **change), echo=lambda *_: None)
    assert not (chapters / "runs").exists()


def test_command_line_errors_and_grid_file(chapters, capsys):
    toml = chapters / "grid.toml"
    toml.write_text(f'chapters = ["01"]\nseeds = [0, 1]\nprofile = "smoke"\nnotebooks = "{chapters / "notebooks"}"\n'
                    f'runs = "{chapters / "runs"}"\n[set]\nscale = [1.0, 3.0]\n')
    assert sweep.main(["run", str(toml), "--set", "depth=3"]) == 2
    assert "has no parameter depth" in capsys.readouterr().err
    args = sweep.make_parser().parse_args(["run", str(toml), "--seeds", "4", "--set", "scale=2,None,'x'"])
    assert [r.run_id for r in sweep.plan(sweep.grid_from_args(args))] == [
        "smoke-seed4-scale=2", "smoke-seed4-scale=null", 'smoke-seed4-scale=_x_']


def test_slurm_submission_without_a_cluster(chapters, monkeypatch):
    """A fake sbatch keeps the script submitit generated; it must carry the partition, GPUs and time asked for."""
    bin_ = chapters / "bin"
    bin_.mkdir()
    (bin_ / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {chapters}/submitted.sh\necho "Submitted batch job 4242"\n')
    (bin_ / "srun").write_text("#!/bin/sh\nexit 1\n")
    for tool in bin_.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    g = grid(chapters, executor="slurm", slurm={"partition": "gpu-a100", "gpus": 2, "time": 90,
                                                "array_parallelism": 2})
    report = sweep.submit(g, echo=lambda *_: None)
    assert len(report["submitted"]) == 4 and not report["done"]
    script = (chapters / "submitted.sh").read_text()
    for line in ("#SBATCH --partition=gpu-a100", "#SBATCH --gpus-per-node=2", "#SBATCH --time=90",
                 "#SBATCH --array=0-3%2"):
        assert line in script, f"{line!r} not in the sbatch script:\n{script}"
    assert (chapters / "runs" / "02_beta" / "smoke-seed7.job").read_text().strip() == "4242_3"
