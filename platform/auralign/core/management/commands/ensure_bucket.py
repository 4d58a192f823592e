from django.core.management.base import BaseCommand

from auralign.core import storage


class Command(BaseCommand):
    help = "Create the S3 bucket named by S3_BUCKET if it does not exist (no-op for local storage)."

    def handle(self, **options):
        storage.ensure_bucket()
        self.stdout.write("storage ready")
