"""``POST /api/jobs``: submit a shot list by its path on the shared storage (JSON), or upload it as a bundle
(multipart: the tar.gz or zip of its folder, and the shot list's name inside it).

The job is submitted under the token's name. An ``Idempotency-Key`` header makes a retried request safe:
the same key with the same request answers 200 with the job the first one made, the same key with
another request 422; a new job is 201. Nothing is written for a request that is refused: no job, and no
unpacked bundle left in the uploads.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from farm.api.auth import Submitter
from farm.api.context import ApiSettingsDep, FarmDep
from farm.api.responses import FarmJSONResponse
from farm.api.schemas import SubmitBundleFields, SubmitByPath
from farm.errors import BundleTooLarge
from farm.jobs.submit import Submission

router = APIRouter(tags=["jobs"])
Order = TypeVar("Order", bound=BaseModel)

_BODIES = {
    "application/json": {"schema": SubmitByPath.model_json_schema()},
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["bundle", "shot_list"],
            "properties": {
                "bundle": {"type": "string", "format": "binary", "description": "tar.gz or zip of the folder"},
                **SubmitBundleFields.model_json_schema()["properties"],
            },
        }
    },
}


@router.post(
    "/api/jobs",
    status_code=201,
    summary="Submit a shot list (by path, or as an uploaded bundle)",
    openapi_extra={"requestBody": {"required": True, "content": _BODIES}},
    responses={200: {"description": "The job an earlier request with this Idempotency-Key made"}},
)
async def submit(
    request: Request,
    farm: FarmDep,
    api: ApiSettingsDep,
    caller: Submitter,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> FarmJSONResponse:
    """JSON ``{"path", "quality", "priority"}`` for a shot list the farm can read where it is; multipart with a
    ``bundle`` file and a ``shot_list`` field for one it cannot."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        submission = await _submit_bundle(request, farm, api, caller.name, idempotency_key)
    elif kind in ("application/json", ""):
        order = _parsed(SubmitByPath, await _json(request))
        submission = await run_in_threadpool(
            lambda: farm.submit(
                order.path,
                quality=order.quality,
                priority=order.priority,
                idempotency_key=idempotency_key,
                submitted_by=caller.name,
            )
        )
    else:
        raise RequestValidationError(
            [{"loc": ("header", "content-type"), "msg": f"send application/json or multipart/form-data, not {kind}"}]
        )
    return FarmJSONResponse(_submitted(submission), status_code=200 if submission.replayed else 201)


async def _submit_bundle(
    request: Request, farm: FarmDep, api: ApiSettingsDep, by: str, idempotency_key: str | None
) -> Submission:
    limits = api.bundle_limits
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limits.max_bytes + (1 << 20):
        raise BundleTooLarge(
            f"the bundle is {int(length)} bytes, over the {limits.max_bytes} the farm accepts; send the shot "
            "list's path on the shared storage instead, or a bundle of only its media"
        )
    form = await request.form(max_files=1, max_fields=10)
    try:
        bundle = form.get("bundle")
        if not isinstance(bundle, UploadFile):
            raise RequestValidationError([{"loc": ("body", "bundle"), "msg": "attach the bundle file as 'bundle'"}])
        fields = _parsed(SubmitBundleFields, {key: value for key, value in form.items() if key != "bundle"})
        return await run_in_threadpool(
            lambda: farm.submit_bundle(
                bundle.file,
                fields.shot_list,
                quality=fields.quality,
                priority=fields.priority,
                idempotency_key=idempotency_key,
                submitted_by=by,
                limits=limits,
            )
        )
    finally:
        await form.close()


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f'the body is not JSON ({exc}); send {{"path": "/shared/ep07.yaml"}}'}]
        ) from exc


def _parsed(model: type[Order], data: Any) -> Order:
    """``data`` checked against ``model``, its errors shaped as FastAPI's own (named by body field)."""
    if not isinstance(data, dict):
        raise RequestValidationError([{"loc": ("body",), "msg": "send a JSON object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from exc


def _submitted(submission: Submission) -> dict[str, Any]:
    plan = submission.plan
    return {
        "job_id": submission.job_id,
        "shots": len(plan.tasks),
        "frames": plan.total_frames,
        "shot_list": str(plan.shot_list),
        "project": plan.project,
        "episode": plan.episode,
        "replayed": submission.replayed,
        "url": f"/api/jobs/{submission.job_id}",
    }
