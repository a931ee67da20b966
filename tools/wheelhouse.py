"""A wheelhouse: every wheel ``make setup`` installs, in one folder, for a room without internet.

    python tools/wheelhouse.py make DIR [--extras test,lab] [--constraints FILE] [--keep-installed]
    python tools/wheelhouse.py pip DIR -- install ...      # pip, fed from DIR only (what make setup runs)

Why these steps rather than one ``pip download .[test,lab]``: pip download resolves again for every package
and cannot leave out what the target interpreter already has. So ``make`` asks pip what it *would* install
(``pip install --dry-run --report``, the same resolver ``make setup`` runs, with the same constraints), then
builds or copies exactly those wheels (``pip wheel --no-deps``: a package published only as a source archive
becomes a wheel here, where the compilers are, not in the room). With ``--keep-installed`` (``make wheelhouse
KIT_PYTHON=...``) what that interpreter already has -- the vendor's torch and torchvision on an SDAA machine --
stays out, and the manifest records which torch the folder was made for.

Written by this file and nothing else: ``DIR/manifest.json`` (Python, platform, torch, the wheels with their
sha256), written last and atomically, so a folder without it is an unfinished one.

``pip`` runs pip with ``--no-index --find-links DIR`` and no pip configuration file (a machine's own index or
find-links would hide a missing wheel), and turns pip's resolver failure into one line: which wheel is missing.
Only the standard library is used: this runs before the kit is installed.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

MANIFEST = "manifest.json"
#: Build requirements of ``pip install -e .`` (pyproject's [build-system]) and pip itself (make setup upgrades it).
BOOTSTRAP = ("pip", "setuptools>=64", "wheel")
#: What a KIT_PYTHON wheelhouse never holds: the vendor's builds stay as they are (SDAA images bring their own torch).
VENDOR = ("torch", "torchvision")


class Failed(Exception):
    """A one-line reason; exit code 2."""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def resolve(project: Path, extras: str, constraints: list[Path], keep_installed: bool) -> list[tuple[str, str]]:
    """``(name, version)`` of every distribution ``pip install -e project[extras]`` would install here."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report)]
        command += [] if keep_installed else ["--ignore-installed"]
        for c in constraints:
            command += ["-c", str(c)]
        command += [f"{project}[{extras}]" if extras else str(project)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise Failed(f"pip could not resolve {project}[{extras}]: {_last_line(done.stderr)}")
        items = json.loads(report.read_text())["install"]
    own = _canonical(_project_name(project))
    found = [(item["metadata"]["name"], item["metadata"]["version"]) for item in items]
    return [(n, v) for n, v in found if _canonical(n) != own and not (keep_installed and _canonical(n) in VENDOR)]


def _project_name(project: Path) -> str:
    match = re.search(r'^name\s*=\s*"([^"]+)"', (project / "pyproject.toml").read_text(), re.M)
    return match.group(1) if match else project.name


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make(out: Path, project: Path, extras: str, constraints: list[Path], keep_installed: bool) -> dict:
    """Fill ``out`` with the wheels (see the module docstring) and write its manifest; return the manifest."""
    wanted = resolve(project, extras, constraints, keep_installed)
    requirements = [f"{n}=={v}" for n, v in wanted] + list(BOOTSTRAP)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # unfinished until the new manifest is written
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "requirements.txt"
        listing.write_text("\n".join(requirements) + "\n")
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out),
                               "-r", str(listing)], capture_output=True, text=True)
    if done.returncode != 0:
        raise Failed(f"pip could not fetch or build every wheel into {out}: {_last_line(done.stderr)}")
    torch = _installed_version("torch") if keep_installed else next((v for n, v in wanted if n == "torch"), None)
    wheels = sorted(out.glob("*.whl"))
    manifest = {
        "made": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "python_tag": f"cp{sys.version_info.major}{sys.version_info.minor}",
        "platform": sysconfig.get_platform(),
        "extras": extras,
        "torch": torch,
        "torch_in_wheelhouse": not keep_installed,
        "left_out": list(VENDOR) if keep_installed else [],
        "wheels": [{"file": w.name, "bytes": w.stat().st_size, "sha256": _sha256(w)} for w in wheels],
    }
    tmp_manifest = out / (MANIFEST + ".tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp_manifest, out / MANIFEST)
    return manifest


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise Failed(f"{folder} is not a finished wheelhouse (no {MANIFEST}); make one with `make wheelhouse "
                     f"WHEELHOUSE={folder}` on a machine with internet")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise Failed(f"{path}: unreadable manifest ({e})") from None


def check_fits(manifest: dict, folder: Path) -> None:
    """The wheelhouse was made for this interpreter's Python and platform (else pip's error would be cryptic)."""
    here = (f"cp{sys.version_info.major}{sys.version_info.minor}", sysconfig.get_platform())
    made = (manifest.get("python_tag"), manifest.get("platform"))
    if made != here:
        raise Failed(f"{folder} was made for {made[0]} on {made[1]}, this is {here[0]} on {here[1]}: make it with "
                     "the same Python (KIT_PYTHON) as the room's")
    if not manifest.get("torch_in_wheelhouse") and manifest.get("torch"):
        have = _installed_version("torch")
        if have is None:
            raise Failed(f"{folder} holds no torch (made for torch {manifest['torch']} of an existing environment), "
                         "and this Python has none: run with KIT_PYTHON set to that environment's python")


_MISSING = (
    re.compile(r"No matching distribution found for ([^\s]+)"),
    re.compile(r"Could not find a version that satisfies the requirement ([^\s]+)"),
)


def pip_offline(folder: Path, args: list[str]) -> int:
    """``python -m pip ARGS`` from ``folder`` only; a missing wheel becomes one line and exit code 2."""
    check_fits(read_manifest(folder), folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(folder.resolve()),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.Popen([sys.executable, "-m", "pip", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    for line in proc.stdout:  # shown as it comes (pip's progress), kept to find the missing wheel
        sys.stdout.write(line)
        seen.append(line)
    if proc.wait() == 0:
        return 0
    text = "".join(seen)
    for pattern in _MISSING:
        match = pattern.search(text)
        if match:
            raise Failed(f"the wheelhouse {folder} has no wheel for {match.group(1)}: make it again with "
                         f"`make wheelhouse WHEELHOUSE={folder}` (same Python, same extras) where there is internet")
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/wheelhouse.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    m = sub.add_parser("make", help="fill DIR with every wheel make setup installs, and a manifest")
    m.add_argument("folder", type=Path)
    m.add_argument("--project", type=Path, default=Path(__file__).resolve().parents[1])
    m.add_argument("--extras", default="test,lab")
    m.add_argument("--constraints", type=Path, action="append", default=[])
    m.add_argument("--keep-installed", action="store_true",
                   help="leave out what this interpreter already has (torch, torchvision: the vendor's)")
    p = sub.add_parser("pip", help="run pip with DIR as the only package source")
    p.add_argument("folder", type=Path)
    p.add_argument("pip_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.action == "make":
            manifest = make(args.folder, args.project, args.extras, args.constraints, args.keep_installed)
            size = sum(w["bytes"] for w in manifest["wheels"])
            torch = manifest["torch"] or "none"
            where = "included" if manifest["torch_in_wheelhouse"] else "left out: the environment's own"
            print(f"wrote {args.folder}: {len(manifest['wheels'])} wheels, {size / 2**20:.0f} MiB, for Python "
                  f"{manifest['python']} on {manifest['platform']}; torch {torch} ({where})")
            return 0
        pip_args = args.pip_args[1:] if args.pip_args[:1] == ["--"] else args.pip_args
        return pip_offline(args.folder, pip_args)
    except Failed as e:
        print(f"wheelhouse: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
