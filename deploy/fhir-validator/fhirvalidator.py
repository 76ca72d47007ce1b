#!/usr/bin/env python3
"""Validate FHIR R4 JSON files offline with HAPI FHIR's instance validator, from Maven Central jars.

Usage:
    python deploy/fhir-validator/fhirvalidator.py fetch              # jars + compiled Validate.java
    python deploy/fhir-validator/fhirvalidator.py validate FILE...   # JSON report; exit 1 on errors

A check of regbridge's NVR bundles that no one on the project wrote: base FHIR R4 (4.0.1) from
``hapi-fhir-validation-resources-r4``, no terminology server, no package download, no network.
Jars are cached outside the repository in ``$REGBRIDGE_FHIR_VALIDATOR_CACHE`` (default
``~/.cache/regbridge/fhir-validator/<hash of pom.xml>``); ``Validate.java`` is compiled once into
the same folder (keyed by its own hash). All files are validated in one JVM: starting it and loading
the R4 definitions costs seconds, one more bundle costs milliseconds. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
SOURCE = HERE / "Validate.java"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
# C1 only and the serial collector: about a second faster and half the memory for a run of seconds.
JVM_OPTIONS = ("-Xmx1g", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
ERROR_SEVERITIES = frozenset({"error", "fatal"})


class ValidatorError(RuntimeError):
    """The validator could not be fetched, compiled or run (not: a file had errors)."""


class ValidatorUnavailableError(ValidatorError):
    """Java, javac or Maven is missing, or Maven Central could not provide the jars."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One message of the validator about one file."""

    severity: str  # fatal | error | warning | information
    location: str  # FHIRPath-like, e.g. Bundle.entry[0].resource/*Immunization/null*/.status
    message: str
    message_id: str | None = None
    line: int | None = None
    column: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity in ERROR_SEVERITIES

    def __str__(self) -> str:
        return f"{self.severity}: {self.location}: {self.message}"


@dataclass(frozen=True, slots=True)
class FileResult:
    """The validator's verdict on one file."""

    file: str
    valid: bool
    ms: int
    issues: tuple[Issue, ...]

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(issue for issue in self.issues if issue.is_error)

    @property
    def warnings(self) -> tuple[Issue, ...]:
        return tuple(issue for issue in self.issues if issue.severity == "warning")


@dataclass(frozen=True, slots=True)
class Report:
    """One JVM run over several files."""

    hapi_fhir: str
    fhir_version: str
    startup_ms: int
    files: tuple[FileResult, ...]
    network_attempts: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return all(result.valid for result in self.files)

    def result(self, file: str) -> FileResult:
        """The result for one file (or, from `validate_resources`, one name)."""
        for result in self.files:
            if result.file == file:
                return result
        raise KeyError(file)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        return cls(
            hapi_fhir=str(data["hapi_fhir"]),
            fhir_version=str(data["fhir_version"]),
            startup_ms=int(data["startup_ms"]),
            files=tuple(
                FileResult(
                    file=str(item["file"]),
                    valid=bool(item["valid"]),
                    ms=int(item["ms"]),
                    issues=tuple(
                        Issue(
                            severity=str(issue["severity"]),
                            location=str(issue["location"]),
                            message=str(issue["message"]),
                            message_id=issue.get("message_id"),
                            line=issue.get("line"),
                            column=issue.get("column"),
                        )
                        for issue in item["issues"]
                    ),
                )
                for item in data["files"]
            ),
            network_attempts=tuple(str(uri) for uri in data.get("network_attempts", ())),
        )


def cache_dir() -> Path:
    """Where the jars live: keyed by the pom so a version change fetches anew."""
    if override := os.environ.get("REGBRIDGE_FHIR_VALIDATOR_CACHE"):
        return Path(override)
    key = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "regbridge" / "fhir-validator" / key


def fetch_jars() -> Path:
    """Copy HAPI FHIR's validator and its R4 definitions from Maven Central once; return lib/."""
    lib = cache_dir() / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    if shutil.which("mvn") is None:
        raise ValidatorUnavailableError(
            "mvn not found: install Maven (and a Java 17 JDK) to fetch the jars"
        )
    tmp = lib.with_name("lib.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"fhirvalidator: fetching HAPI FHIR jars into {lib} (once, ~145 MB)", file=sys.stderr)
    try:
        subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "-f",
                str(POM),
                DEPENDENCY_PLUGIN,
                "-DincludeScope=runtime",
                f"-DoutputDirectory={tmp}",
            ],
            check=True,
            stdout=sys.stderr,
        )
    except subprocess.CalledProcessError as exc:
        raise ValidatorUnavailableError(
            f"mvn could not fetch the validator's jars (exit {exc.returncode})"
        ) from exc
    shutil.rmtree(lib, ignore_errors=True)
    tmp.rename(lib)
    marker.touch()
    return lib


def compile_validator(lib: Path) -> Path:
    """Compile Validate.java once against the jars; return the folder of its classes."""
    key = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    classes = cache_dir() / f"classes-{key}"
    if (classes / "Validate.class").exists():
        return classes
    javac = shutil.which("javac")
    if javac is None:
        raise ValidatorUnavailableError(
            "javac not found: install a Java 17 JDK (openjdk-17-jdk-headless)"
        )
    tmp = classes.with_name(classes.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    result = subprocess.run(
        [javac, "-nowarn", "-encoding", "UTF-8", "-cp", f"{lib}/*", "-d", str(tmp), str(SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ValidatorError(f"javac failed on {SOURCE}:\n{result.stderr.strip()}")
    shutil.rmtree(classes, ignore_errors=True)
    tmp.rename(classes)
    return classes


def prepare() -> list[str]:
    """Fetch and compile as needed; return the java command line up to the file arguments."""
    java = shutil.which("java")
    if java is None:
        raise ValidatorUnavailableError(
            "java not found: install a Java 17 JDK to run the FHIR validator"
        )
    lib = fetch_jars()
    classes = compile_validator(lib)
    return [java, *JVM_OPTIONS, "-cp", f"{classes}{os.pathsep}{lib}/*", "Validate"]


def validate_files(paths: Sequence[str | os.PathLike[str]], *, timeout: float = 600.0) -> Report:
    """Validate JSON files against base R4 in one JVM run; a file's errors are in the report."""
    if not paths:
        raise ValueError("no files to validate")
    command = [*prepare(), *(os.fspath(path) for path in paths)]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ValidatorError(f"the validator did not finish within {timeout:.0f}s") from exc
    if result.returncode not in (0, 1):
        raise ValidatorError(
            f"the validator exited with {result.returncode}: {result.stderr.strip()[-2000:]}"
        )
    try:
        return Report.from_json(json.loads(result.stdout))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidatorError(
            f"unreadable validator output ({exc}): {result.stdout[:500]!r} {result.stderr[-2000:]}"
        ) from exc


def validate_resources(
    resources: Iterable[tuple[str, Mapping[str, Any]]], *, timeout: float = 600.0
) -> Report:
    """Validate named resources (e.g. Bundles) in one JVM run; each result's `file` is its name."""
    named = list(resources)
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"resource names must be unique: {names}")
    with tempfile.TemporaryDirectory(prefix="regbridge-fhir-") as folder:
        paths = []
        for index, (_, resource) in enumerate(named):
            path = Path(folder) / f"{index:04d}.json"
            path.write_text(json.dumps(resource, ensure_ascii=False, indent=1), encoding="utf-8")
            paths.append(path)
        report = validate_files(paths, timeout=timeout)
    if report.network_attempts:
        raise ValidatorError(f"the validator tried the network: {list(report.network_attempts)}")
    files = tuple(
        replace(result, file=name) for name, result in zip(names, report.files, strict=True)
    )
    return replace(report, files=files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download the jars and compile Validate.java (once)")
    validate = sub.add_parser("validate", help="validate FHIR R4 JSON files (one JVM run)")
    validate.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(compile_validator(fetch_jars()).parent)
            return 0
        report = validate_files(args.files)
    except ValidatorError as exc:
        print(f"fhirvalidator: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(_as_json(report), indent=2, ensure_ascii=False))
    return 0 if report.valid else 1


def _as_json(report: Report) -> dict[str, Any]:
    return {**asdict(report), "valid": report.valid}


if __name__ == "__main__":
    sys.exit(main())
