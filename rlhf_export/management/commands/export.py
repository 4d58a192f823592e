"""manage.py export --campaign NAME_OR_UUID --kind pairwise [filters] [--inline | --no-wait]
manage.py export --verify SNAPSHOT

Creates an export snapshot. By default it runs as a Celery job on the `cpu` queue and this
command waits with a progress bar; --inline runs it in this process, --no-wait only enqueues.
--verify rebuilds a succeeded snapshot at its watermark and compares the checksums.
"""

from __future__ import annotations

import time
import uuid as uuidlib

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from auralign.campaigns.models import Campaign
from auralign.core.errors import ServiceError
from auralign.core.ids import is_uuid
from rlhf_export.models import ExportSnapshot
from rlhf_export.services import snapshot_create, snapshot_run, snapshot_verify
from rlhf_export.spec import FORMATS, SPLITS


def _campaign(ref: str) -> Campaign:
    try:
        query = {"uuid": uuidlib.UUID(ref)}
    except ValueError:
        query = {"name": ref}
    found = Campaign.objects.filter(**query).first()
    if found is None:
        raise CommandError(f"no campaign '{ref}' (give its name or uuid)")
    return found


def _splits(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise CommandError(f"--splits: '{part}' is not NAME=FRACTION (names: {', '.join(SPLITS)})") from None
    return out


class Command(BaseCommand):
    help = "Create an export snapshot of judgments (or verify one)."

    def add_arguments(self, parser):
        parser.add_argument("--verify", metavar="SNAPSHOT", help="rebuild this snapshot at its watermark and compare sha256")
        parser.add_argument("--campaign", action="append", default=[], help="campaign name or uuid (repeatable)")
        parser.add_argument("--kind", choices=ExportSnapshot.Kind.values, default=ExportSnapshot.Kind.PAIRWISE)
        parser.add_argument("--rubric-version", action="append", default=[], help="only judgments on this slug@version")
        parser.add_argument("--exclude-gold", action="store_true")
        parser.add_argument("--include-honeypots", action="store_true", help="honeypot items are excluded by default")
        parser.add_argument("--exclude-flagged", action="store_true", help="drop judgments that flag a candidate or the item")
        parser.add_argument("--min-reliability", type=float)
        parser.add_argument("--min-agreement", type=float)
        parser.add_argument("--qualified-only", action="store_true")
        parser.add_argument("--judged-after", help="ISO 8601, inclusive")
        parser.add_argument("--judged-before", help="ISO 8601, exclusive")
        parser.add_argument("--splits", type=_splits, help="e.g. train=0.8,validation=0.1,test=0.1")
        parser.add_argument("--split-seed", default="auralign")
        parser.add_argument("--formats", default=",".join(FORMATS), help="comma separated: parquet,jsonl")
        parser.add_argument("--rows-per-shard", type=int)
        parser.add_argument("--user", help="record this user as the snapshot's creator")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--inline", action="store_true", help="run in this process instead of the cpu queue")
        mode.add_argument("--no-wait", action="store_true", help="enqueue and return")

    def handle(self, *args, **o):
        quiet = o["verbosity"] == 0
        if o["verify"]:
            return self._verify(o["verify"], quiet)
        if not o["campaign"]:
            raise CommandError("name at least one --campaign")
        user = None
        if o["user"]:
            user = get_user_model().objects.filter(username=o["user"]).first()
            if user is None:
                raise CommandError(f"no user '{o['user']}'")
        options = {
            "filters": {
                "rubric_versions": o["rubric_version"], "exclude_gold": o["exclude_gold"],
                "exclude_honeypots": not o["include_honeypots"], "exclude_flagged": o["exclude_flagged"],
                "min_reliability": o["min_reliability"], "min_agreement": o["min_agreement"],
                "qualified_only": o["qualified_only"], "judged_after": o["judged_after"], "judged_before": o["judged_before"],
            },
            "splits": o["splits"],
            "split_seed": o["split_seed"],
            "formats": [f.strip() for f in o["formats"].split(",") if f.strip()],
        }
        if o["rows_per_shard"] is not None:
            options["rows_per_shard"] = o["rows_per_shard"]
        campaigns = [_campaign(ref) for ref in o["campaign"]]
        try:
            snapshot = snapshot_create(user=user, campaigns=campaigns, kind=o["kind"], enqueue=not o["inline"], **options)
        except ServiceError as exc:
            raise CommandError(exc.describe()) from None
        self.stdout.write(f"snapshot {snapshot.uuid} ({snapshot.kind}) created")
        if o["no_wait"]:
            return
        bar, progress = _progress_bar("export", quiet)
        if o["inline"]:
            snapshot = snapshot_run(snapshot_id=snapshot.pk, on_progress=progress)
        else:
            while not snapshot.is_done:
                time.sleep(0.5)
                snapshot.refresh_from_db()
                bar.n = snapshot.progress
                bar.set_postfix_str(f"{snapshot.status}, {snapshot.rows} rows")
        bar.close()
        if snapshot.status == ExportSnapshot.Status.FAILED:
            raise CommandError(f"export {snapshot.uuid} failed: {snapshot.error}")
        for f in snapshot.files:
            self.stdout.write(f"  {f['path']:<40} {f['rows']:>10} rows  {f['sha256'][:16]}")
        self.stdout.write(self.style.SUCCESS(f"snapshot {snapshot.uuid}: {snapshot.rows} rows under {snapshot.prefix}"))

    def _verify(self, ref: str, quiet: bool) -> None:
        snapshot = ExportSnapshot.objects.filter(uuid=ref).first() if is_uuid(ref) else None
        if snapshot is None:
            raise CommandError(f"no snapshot '{ref}'")
        bar, progress = _progress_bar("verify", quiet)
        try:
            report = snapshot_verify(snapshot=snapshot, on_progress=progress)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        bar.close()
        if not report["reproducible"]:
            what = "the covered judgments changed" if not report["judgments_match"] else "files differ"
            raise CommandError(f"snapshot {snapshot.uuid} is NOT reproduced ({what}): {', '.join(report['mismatched_files'])}")
        self.stdout.write(self.style.SUCCESS(f"snapshot {snapshot.uuid} reproduced: every sha256 matches"))


def _progress_bar(desc: str, quiet: bool):
    """A bar over the fraction done, and the on_progress callback that drives it."""
    bar = tqdm(total=1.0, desc=desc, bar_format="{l_bar}{bar}| {postfix}", disable=quiet)

    def progress(done: int, total: int, rows: int) -> None:
        bar.n = done / total if total else 1.0
        bar.set_postfix_str(f"{done}/{total} judgments, {rows} rows")

    return bar, progress
