"""moto server for the test suite, with changes that keep the tests honest.

1. Stock moto accepts an *Inactive* access key in IAM auth mode. Real IAM refuses it, and
   "a deactivated key stops working" is something the tests must be able to observe, so the
   key lookup is patched to reject any key whose status is not Active.
2. `POST /_test/break-new-keys` with `{"user_name": "..."}` makes every key that user gets from
   then on fail authentication, as a key that never propagates would.
3. Real IAM keys age; moto's are created "now". `POST /_test/backdate` with a JSON body
   `{"access_key_id": "...", "minutes": N}` moves a key's CreateDate N minutes into the past,
   and `{"access_key_id": "...", "last_used_minutes_ago": N, "service": "s3"}` records a last use.

4. In IAM auth mode moto checks a request's signature against a body it re-encodes from the
   parsed form (spaces as `+`), so a correctly signed body that encodes a space as `%20` (as the
   AWS SDK for Rust does, in tag values) is refused with SignatureDoesNotMatch. Real IAM signs
   the bytes sent: the wrapper hands moto's check the raw body, and the raw query string (moto
   decodes it, so an S3 listing's `prefix=web%2F` would not match its own signature).

5. `POST /_test/lose-answer` with `{"action": "CreateAccessKey", "times": 1}` lets the next
   such call take effect and then answers 500 instead of its result: a lost answer. With
   `"stall": true` the call takes effect and then never answers (a stalled connection): the
   client's own timeout has to end it. `"after": N` lets N such calls pass first, and
   `"apply": false` stalls before the call takes effect.
6. `GET /_test/calls` answers `{"calls": [actions in order], "stalled": N}`: what the server was
   asked (an S3 put as `PUT /bucket/key`), and how many calls are stalled now.
7. moto keeps the permissions boundary of roles only: a user's is kept too
   (PutUserPermissionsBoundary, and GetUser shows it), as IAM does.
8. STS takes AssumeRoleWithWebIdentity unsigned (the token is the credential, and the SDKs
   send it so); moto's auth mode wants a signature on it: it is let through unsigned.
9. moto assumes any role, existing or not, whoever asks. Real STS checks the role's trust
   policy: AssumeRole here answers AccessDenied unless the role exists in its account and an
   Allow statement of its trust names the caller (its ARN, its account's root, or the account
   id) with every condition met (only `StringEquals` on `sts:ExternalId` is understood; any
   other condition denies).
10. `POST /_test/account` with `{"account_id": "222222222222"}` makes an `admin` user allowed
   everything in that account and answers its key: how a test sets up a second account.
   `GET /_test/sessions` answers every assumed role's secret key and session token (for the
   tests' leak scan).

11. `POST /_test/s3-writer` with `{"bucket": B, "key": K, "times": N, "old": TEXT, "new": TEXT}`:
   the next N conditional puts (`If-Match`) of that object find it changed first, as by another
   writer between the tool's read and its write: `old` replaced by `new` in its text, its
   encryption and metadata kept. The put then meets a changed ETag (412), as on S3.

Usage: python moto_server.py PORT
"""

import datetime
import io
import json
import os
import sys
import threading
import time
import urllib.parse

from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam import access_control
from moto.iam import models as iam_models
from moto.iam import responses as iam_responses
from moto.iam.models import AccessKeyLastUsed, iam_backends
from moto.core.exceptions import AccessDeniedError
from moto.sts import responses as sts_responses
from moto.sts.models import sts_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response

_original_init = access_control.IAMUserAccessKey.__init__

# user name -> keys created after this moment never work (POST /_test/break-new-keys)
_BROKEN_AFTER = {}

# IAM action -> how many more of its answers are lost (POST /_test/lose-answer)
_LOSE = {}
# IAM action -> whether its lost answers stall instead of failing
_STALL = {}
# IAM action -> how many of its calls pass before the lost answers begin
_AFTER = {}
# IAM action -> whether a stalled call takes effect first
_APPLY = {}
# every action asked, in order, and how many calls are stalled now
_CALLS = []
_STALLED = [0]

_LOST_ANSWER = (
    '<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>'
    "<Message>the answer was lost (test)</Message></Error></ErrorResponse>"
)


def _init_rejecting_inactive(self, account_id, partition, access_key_id, headers):
    _original_init(self, account_id, partition, access_key_id, headers)
    for user in self.backend.list_users("/", None, None):
        for key in user.access_keys:
            if key.access_key_id != access_key_id:
                continue
            if key.status != "Active":
                raise access_control.CreateAccessKeyFailure(reason="InvalidId")
            broken = _BROKEN_AFTER.get(user.name)
            if broken is not None and key.create_date >= broken:
                raise access_control.CreateAccessKeyFailure(reason="InvalidId")


access_control.IAMUserAccessKey.__init__ = _init_rejecting_inactive

# moto keeps permissions boundaries of roles only: a user's is kept here (what `migrate` copies
# to the role it makes), set by PutUserPermissionsBoundary and shown by GetUser.
_original_user_init = iam_models.User.__init__


def _user_init(self, *args, **kwargs):
    _original_user_init(self, *args, **kwargs)
    self.permissions_boundary_arn = None


def _user_boundary(self):
    if self.permissions_boundary_arn:
        return {
            "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
            "PermissionsBoundaryArn": self.permissions_boundary_arn,
        }
    return None


def _put_user_permissions_boundary(self):
    user = self.backend.get_user(self._get_param("UserName"))
    user.permissions_boundary_arn = self._get_param("PermissionsBoundary")
    return iam_responses.EmptyResult()


_original_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action


def _authorize_unless_web_identity(self, resource="*"):
    if self._get_action() == "AssumeRoleWithWebIdentity":
        return None
    return _original_authorize(self, resource)


ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = _authorize_unless_web_identity
iam_models.User.__init__ = _user_init
iam_models.User.permissions_boundary = property(_user_boundary)
iam_responses.IamResponse.put_user_permissions_boundary = _put_user_permissions_boundary

# The raw body of the request this thread is serving (the server is threaded).
_RAW = threading.local()
_original_create_aws_request = access_control.IAMRequestBase._create_aws_request


def _create_aws_request_from_raw_body(self):
    request = _original_create_aws_request(self)
    raw = getattr(_RAW, "body", None)
    if raw:
        request.data = raw
    # The query string as sent, too: moto hands the signer a decoded one (`prefix=web/` for
    # the `prefix=web%2F` the client signed), and the signer does not encode it again.
    query = getattr(_RAW, "query", None)
    if query:
        request.url = request.url.split("?", 1)[0] + "?" + query
    return request


access_control.IAMRequestBase._create_aws_request = _create_aws_request_from_raw_body


def _find_key(access_key_id):
    for account in iam_backends.values():
        for backend in account.values():
            for user in backend.users.values():
                for key in user.access_keys:
                    if key.access_key_id == access_key_id:
                        return key
    return None


def _listify(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _caller_arn(response):
    key_id = response.get_access_key()
    account = response.current_account
    for backend in iam_backends[account].values():
        for user in backend.users.values():
            if any(k.access_key_id == key_id for k in user.access_keys):
                return user.arn
    for backend in sts_backends[account].values():
        for role in backend.assumed_roles:
            if role.access_key_id == key_id:
                return role.arn
    return f"arn:aws:iam::{account}:root"


def _trust_admits(document, caller_arn, caller_account, external_id):
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            document = json.loads(urllib.parse.unquote(document))
    for st in _listify(document.get("Statement")):
        if st.get("Effect") != "Allow":
            continue
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in _listify(st.get("Action"))):
            continue
        principal = st.get("Principal")
        names = ["*"] if principal == "*" else _listify((principal or {}).get("AWS"))
        admitted = ("*", caller_arn, caller_account, f"arn:aws:iam::{caller_account}:root")
        if not any(p in admitted for p in names):
            continue
        met = True
        for op, pairs in (st.get("Condition") or {}).items():
            for k, v in pairs.items():
                if op != "StringEquals" or k.lower() != "sts:externalid":
                    met = False
                elif external_id not in _listify(v):
                    met = False
        if met:
            return True
    return False


_original_assume_role = sts_responses.TokenResponse.assume_role


def _assume_role_checking_trust(self):
    role_arn = self._get_param("RoleArn") or ""
    caller = _caller_arn(self)
    parts = role_arn.split(":")
    role = None
    if len(parts) == 6 and parts[5].startswith("role/"):
        for backend in iam_backends[parts[4]].values():
            for r in backend.roles.values():
                if r.arn == role_arn:
                    role = r
    if role is None or not _trust_admits(
        role.assume_role_policy_document,
        caller,
        self.current_account,
        self._get_param("ExternalId"),
    ):
        raise AccessDeniedError(user_arn=caller, action="sts:AssumeRole")
    return _original_assume_role(self)


sts_responses.TokenResponse.assume_role = _assume_role_checking_trust


def _account_admin(account_id):
    backend = iam_backends[account_id]["aws"]
    if "admin" not in backend.users:
        backend.create_user(region_name="us-east-1", user_name="admin", path="/", tags=[])
        backend.put_user_policy(
            "admin",
            "all",
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
        )
    # The same key every time: a second user of the account asks again.
    keys = backend.users["admin"].access_keys
    key = keys[0] if keys else backend.create_access_key("admin")
    return {"id": key.access_key_id, "secret": key.secret_access_key}


# (bucket, key) -> [times left, old, new] (POST /_test/s3-writer)
_S3_WRITER = {}


def _s3_write_between(environ):
    """Another writer's change, if one is due before this conditional put."""
    if environ.get("REQUEST_METHOD") != "PUT" or "HTTP_IF_MATCH" not in environ:
        return
    path = urllib.parse.unquote(environ.get("PATH_INFO", "")).lstrip("/")
    bucket, _, key = path.partition("/")
    due = _S3_WRITER.get((bucket, key))
    if not due or due[0] <= 0:
        return
    due[0] -= 1
    from moto.s3.models import s3_backends

    for account in s3_backends.values():
        for backend in account.values():
            try:
                old = backend.get_object(bucket, key)
            except Exception:
                continue
            if old is None:
                continue
            text = old.value.decode().replace(due[1], due[2])
            new = backend.put_object(
                bucket,
                key,
                text.encode(),
                encryption=old.encryption,
                kms_key_id=old.kms_key_id,
                bucket_key_enabled=old.bucket_key_enabled,
                disable_notification=True,
            )
            new.set_metadata(dict(old.metadata))
            return


class TestHooks:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        _RAW.body = raw
        _RAW.query = environ.get("QUERY_STRING", "")
        path = environ.get("PATH_INFO")
        if path == "/moto-api/reset":
            _BROKEN_AFTER.clear()
            _LOSE.clear()
            _STALL.clear()
            _AFTER.clear()
            _APPLY.clear()
            del _CALLS[:]
            _STALLED[0] = 0
            _S3_WRITER.clear()
        if path == "/_test/s3-writer":
            body = json.loads(raw.decode())
            _S3_WRITER[(body["bucket"], body["key"])] = [
                int(body.get("times", 1)),
                body["old"],
                body["new"],
            ]
            return Response("ok")(environ, start_response)
        _s3_write_between(environ)
        if environ.get("REQUEST_METHOD") == "PUT" and not path.startswith("/_test/"):
            # S3's puts, by object (`PUT /bucket/key`), among the calls.
            _CALLS.append("PUT " + urllib.parse.unquote(path))
        if path == "/_test/account":
            body = json.loads(raw.decode())
            answer = json.dumps(_account_admin(body["account_id"]))
            return Response(answer, content_type="application/json")(environ, start_response)
        if path == "/_test/sessions":
            secrets = []
            for account in sts_backends.values():
                for backend in account.values():
                    for r in backend.assumed_roles:
                        secrets += [r.secret_access_key, r.session_token]
            return Response(json.dumps(secrets), content_type="application/json")(
                environ, start_response
            )
        if path == "/_test/calls":
            body = json.dumps({"calls": list(_CALLS), "stalled": _STALLED[0]})
            return Response(body, content_type="application/json")(environ, start_response)
        if path == "/_test/lose-answer":
            body = json.loads(raw.decode())
            _LOSE[body["action"]] = body.get("times", 1)
            _STALL[body["action"]] = bool(body.get("stall", False))
            _AFTER[body["action"]] = int(body.get("after", 0))
            _APPLY[body["action"]] = bool(body.get("apply", True))
            return Response("ok")(environ, start_response)
        action = urllib.parse.parse_qs(raw.decode(errors="replace")).get("Action", [None])[0]
        if action:
            _CALLS.append(action)
        if action and _LOSE.get(action, 0) > 0 and _AFTER.get(action, 0) > 0:
            _AFTER[action] -= 1
        elif action and _LOSE.get(action, 0) > 0:
            _LOSE[action] -= 1
            if _APPLY.get(action, True):
                result = self.app(environ, lambda status, headers, exc_info=None: None)
                try:
                    b"".join(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
            if _STALL.get(action):
                _STALLED[0] += 1
                time.sleep(3600)
            return Response(_LOST_ANSWER, status=503, content_type="text/xml")(
                environ, start_response
            )
        if path == "/_test/break-new-keys":
            body = json.loads(Request(environ).get_data(as_text=True))
            _BROKEN_AFTER[body["user_name"]] = datetime.datetime.now(
                datetime.timezone.utc
            ).replace(tzinfo=None)
            return Response("ok")(environ, start_response)
        if path != "/_test/backdate":
            return self.app(environ, start_response)
        body = json.loads(Request(environ).get_data(as_text=True))
        key = _find_key(body["access_key_id"])
        if key is None:
            return Response("no such key", status=404)(environ, start_response)
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        if "minutes" in body:
            key.create_date = key.create_date - datetime.timedelta(minutes=body["minutes"])
        if "last_used_minutes_ago" in body:
            used = now - datetime.timedelta(minutes=body["last_used_minutes_ago"])
            key.last_used = AccessKeyLastUsed(
                timestamp=used, service=body.get("service", "s3"), region="us-east-1"
            )
        return Response("ok")(environ, start_response)


def _exit_with_parent():
    """The test binary that started this server may die without cleaning up: follow it."""
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


if __name__ == "__main__":
    port = int(sys.argv[1])
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, TestHooks(app), threaded=True)
