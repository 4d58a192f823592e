from __future__ import annotations

from django.db.models import Count, QuerySet

from auralign.dialogues.models import Dialogue, DialogueSet, Turn


def dialogue_set_list() -> QuerySet[DialogueSet]:
    return DialogueSet.objects.annotate(dialogue_count=Count("dialogues")).order_by("name")


def dialogue_list(*, dialogue_set: DialogueSet) -> QuerySet[Dialogue]:
    return dialogue_set.dialogues.prefetch_related("turns__audio").order_by("id")


def dialogue_turns(*, dialogue: Dialogue) -> QuerySet[Turn]:
    return dialogue.turns.select_related("audio").order_by("index")
