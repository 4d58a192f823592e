"""manage.py import_dialogues MANIFEST [--set NAME]

MANIFEST is a JSONL file (audio paths relative to its folder) or an s3://bucket/prefix/ holding
manifest.jsonl. All or nothing: any bad line or audio file stops the import, stores nothing,
prints each problem with its line and field, and exits non-zero.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from auralign.core.errors import ServiceError
from auralign.dialogues.services import ImportRejected, dialogue_set_import
from auralign.dialogues.sources import LocalSource, S3PrefixSource, SourceError


class Command(BaseCommand):
    help = "Import a dialogue set from a JSONL manifest (local file or s3:// prefix)."

    def add_arguments(self, parser):
        parser.add_argument("manifest", help="path to manifest.jsonl, or s3://bucket/prefix/")
        parser.add_argument("--set", dest="set_name", help="dialogue set name (default: the manifest's folder name)")
        parser.add_argument("--description", default="")

    def handle(self, manifest: str, set_name: str | None, description: str, **opts):
        try:
            if manifest.startswith("s3://"):
                source, key = S3PrefixSource.from_uri(manifest)
                data = source.read_manifest(key)
                default_name = key.rstrip("/").split("/")[-2] if key.count("/") else source.bucket
            else:
                path = Path(manifest)
                if not path.is_file():
                    raise CommandError(f"manifest '{manifest}' does not exist")
                if path.stat().st_size > settings.MANIFEST_MAX_BYTES:
                    raise CommandError(f"manifest '{manifest}' is larger than {settings.MANIFEST_MAX_BYTES} bytes")
                data = path.read_bytes()
                source = LocalSource(base_dir=path.resolve().parent)
                default_name = path.resolve().parent.name
        except SourceError as exc:
            raise CommandError(str(exc)) from None
        name = set_name or default_name
        bar = tqdm(total=0, unit="audio", desc=f"importing into '{name}'", disable=opts.get("verbosity", 1) == 0)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            report = dialogue_set_import(name=name, manifest=data, source=source, description=description, progress=progress)
        except ImportRejected as exc:
            bar.close()
            for line in exc.errors[1:]:
                self.stderr.write(line)
            raise CommandError(f"import rejected, nothing stored: {exc.errors[0]}") from None
        except ServiceError as exc:
            bar.close()
            raise CommandError(exc.message) from None
        bar.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"dialogue set '{report.dialogue_set.name}': {report.created} created, "
                f"{report.unchanged} unchanged, {report.audio_files} audio files"
            )
        )
