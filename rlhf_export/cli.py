"""`python -m rlhf_export`: trainers' command line (Django-free; talks HTTP to the API).

    export AURALIGN_URL=https://auralign.example.org AURALIGN_TOKEN=aur_...
    python -m rlhf_export list
    python -m rlhf_export pull SNAPSHOT --to data/prefs [--with-audio]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rlhf_export.client import AuralignClient, PullError, pull


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rlhf_export", description="Pull Auralign export snapshots.")
    parser.add_argument("--url", default=os.environ.get("AURALIGN_URL", ""), help="server URL (default: $AURALIGN_URL)")
    parser.add_argument("--token", default=os.environ.get("AURALIGN_TOKEN", ""), help="API token (default: $AURALIGN_TOKEN)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="snapshots this token may pull")
    p = commands.add_parser("pull", help="download a snapshot (resumes, verifies sha256)")
    p.add_argument("snapshot", help="snapshot id (uuid)")
    p.add_argument("--to", required=True, type=Path, help="destination folder")
    p.add_argument("--with-audio", action="store_true", help="also download the audio the rows reference")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        client = AuralignClient(args.url, args.token)
        if args.command == "list":
            for s in client.snapshots():
                print(f"{s['id']}  {s['kind']:<18} {s['status']:<9} {s['rows']:>10} rows  {s['created_at']}")
        else:
            manifest = pull(client, args.snapshot, args.to, with_audio=args.with_audio, progress=not args.quiet)
            rows = sum(f["rows"] for f in manifest["files"] if f["format"] == "parquet")
            print(f"{args.to}: {manifest['kind']} snapshot {manifest['snapshot_id']}, {rows} rows, checksums verified")
    except PullError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; run the same pull again to resume", file=sys.stderr)
        return 130
    return 0
