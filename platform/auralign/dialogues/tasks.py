from celery import shared_task

from auralign.dialogues.services import dialogue_import_run


@shared_task(name="auralign.dialogues.import", acks_late=True)
def run_dialogue_import(job_id: int) -> str:
    return dialogue_import_run(job_id=job_id).status
