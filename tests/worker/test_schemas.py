import pytest

from tests.worker.conftest import make_job
from worker.schemas import SchemaError, check_job, check_result


def test_a_well_formed_job_passes():
    check_job(make_job({"checkpoint": "/models/x"}))


def test_a_job_with_an_unknown_backend_is_rejected_naming_the_field():
    job = make_job({"checkpoint": "/models/x"})
    job["policy"]["backend"] = "tgi"
    with pytest.raises(SchemaError, match="policy/backend"):
        check_job(job)


def test_a_job_with_an_unknown_generation_parameter_is_rejected():
    job = make_job({"checkpoint": "/models/x"}, generation={"temprature": 0.5})
    with pytest.raises(SchemaError, match="policy/generation"):
        check_job(job)


def test_a_failed_task_without_an_error_is_an_invalid_result():
    result = {
        "schema": "auralign.sample_result/1", "job_id": "j", "policy_id": "p", "worker": {},
        "tasks": [{"task_id": 1, "dialogue_id": "d", "status": "failed", "error": None, "candidates": []}],
    }
    with pytest.raises(SchemaError, match="tasks/0"):
        check_result(result)
