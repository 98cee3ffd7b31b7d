"""The HTTP client under the twilio client: urllib3, with the environment's proxy and CA read once.

twilio's own (`TwilioHttpClient`) goes through `requests`: about 0.7 ms of Python per request
here, against 0.3 ms for urllib3, which requests is built on, making the same request (requests
adds sessions, hooks, cookies and request and response objects of its own, none of which the
twilio client uses). A worker's sends share one core, so that difference decides how many rows
a worker sends a second (docs/performance.md §4.3). The twilio client takes any `HttpClient` (its
documented `http_client` hook); this one sends what twilio's own would: form-encoded data, Basic
auth, the client's headers, a connect and a read timeout, no retries, no redirects. It logs nothing:
a look-up's query holds a worker's number.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
import urllib3
from twilio.http import HttpClient
from twilio.http.response import Response
from urllib3.util import make_headers

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
_JSON_TYPES = ("application/json", "application/scim+json")


class TwilioApiHttpClient(HttpClient):
    """twilio's `HttpClient` on a urllib3 pool; one per thread (the twilio client is not
    thread-safe), each keeping its connection to Twilio open between requests.

    With `base_url`, every request meant for *.twilio.com goes there instead, path and query
    kept: the way the tests and benchmarks reach the fake Twilio, on the
    same code path production runs. We take that over setting `client.api.base_url`
    because it covers every Twilio domain (api, content, messaging, …) and still works if an
    edge or region rewrote the host first (docs/twilio.md §11).
    """

    def __init__(self, *, timeout: float, base_url: str | None = None) -> None:
        super().__init__(log, is_async=False, timeout=timeout)
        self._base = urlsplit(base_url.rstrip("/")) if base_url else None
        self.pool = _pool_for(base_url or TWILIO_API, timeout)

    def request(
        self,
        method: str,
        uri: str,
        params: Mapping[str, object] | None = None,
        data: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send one request; urllib3's errors are raised as they come (no retry)."""
        url = self._redirected(uri)
        if params:
            url += ("&" if urlsplit(url).query else "?") + _form(params)
        sent_headers = dict(headers or {})
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            sent_headers["Authorization"] = f"Basic {token}"
        body = None
        if data is not None and sent_headers.get("Content-Type") in _JSON_TYPES:
            body = json.dumps(data).encode()
        elif data:
            body = _form(data).encode("ascii")
            sent_headers["Content-Type"] = "application/x-www-form-urlencoded"
        options: dict[str, Any] = {"timeout": _timeout(timeout)} if timeout is not None else {}
        response = self.pool.urlopen(
            method.upper(),
            url,
            body=body,
            headers=sent_headers,
            redirect=allow_redirects,
            **options,
        )
        return Response(response.status, response.data.decode("utf-8", "replace"), response.headers)

    def _redirected(self, url: str) -> str:
        if self._base is None:
            return url
        parts = urlsplit(url)
        if not (parts.hostname and parts.hostname.endswith("twilio.com")):
            return url
        base = self._base
        return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))


def _form(values: Mapping[str, object]) -> str:
    """Form-encode as requests does: a list is one field per item, None is left out."""
    pairs = []
    for key, value in values.items():
        for item in value if isinstance(value, list | tuple) else (value,):
            if item is not None:
                pairs.append((key, item))
    return urlencode(pairs)


def _timeout(seconds: float) -> urllib3.Timeout:
    # requests' single number: at most this long to connect, and between bytes of the answer.
    return urllib3.Timeout(connect=seconds, read=seconds)


def _pool_for(url: str, timeout: float) -> urllib3.PoolManager:
    """A pool for `url` with the environment's proxy and CA bundle, as requests would use them.

    requests reads HTTPS_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE on every request (it walks the
    whole environment); they are read here once, when the client is made, as all configuration
    is (docs/architecture.md §7). requests' own reading is used so the rules stay exactly its rules.
    """
    with requests.Session() as session:
        settings = session.merge_environment_settings(url, {}, None, None, None)
    verify = settings["verify"]
    tls: dict[str, Any] = {}
    if verify is False:
        tls["cert_reqs"] = "CERT_NONE"
    else:
        tls["cert_reqs"] = "CERT_REQUIRED"
        bundle = requests.utils.DEFAULT_CA_BUNDLE_PATH if verify is True else verify
        tls["ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"] = bundle
    options: dict[str, Any] = {
        "maxsize": 1,  # one thread, one request at a time
        "retries": False,  # a retry could send a message twice: the sender decides (send.py)
        "timeout": _timeout(timeout),
        **tls,
    }
    proxy = settings["proxies"].get(urlsplit(url).scheme)
    if not proxy:
        return urllib3.PoolManager(**options)
    parts = urlsplit(proxy)
    proxy_headers = (
        make_headers(proxy_basic_auth=f"{parts.username}:{parts.password or ''}")
        if parts.username
        else None
    )
    return urllib3.ProxyManager(proxy, proxy_headers=proxy_headers, **options)
