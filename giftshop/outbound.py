"""HTTP requests to URLs that someone typed in (the merchant's webhook endpoints), made so that they cannot be
turned against us (server-side request forgery):

- the host is resolved once and every address it resolves to must be public: no loopback, private, link-local
  (the cloud metadata service at 169.254.169.254 among them), shared, multicast or reserved address, IPv4-mapped
  IPv6 included; WEBHOOK_ALLOW_PRIVATE_TARGETS lifts this for self-hosters whose merchant systems live next door;
- the connection goes to the address that was checked (the name is not resolved again, so DNS rebinding between
  the check and the connection gains nothing), with the URL's host in the Host header and in TLS's SNI and
  certificate check;
- redirects are never followed: a 3xx is an answer like any other non-2xx, so the Basic credentials and the
  signature never travel to another host.
"""

import http.client
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _


class UnsafeTarget(ValueError):
    """The URL may not be called: its scheme, or an address its host resolves to."""


def _refusal(address):
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return _("a loopback address")
    if address.is_link_local:
        return _("a link-local address (such as the cloud metadata service)")
    if address.is_private:
        return _("a private address")
    if address.is_multicast or not address.is_global:
        return _("an address that is not public")
    return None


def target(url):
    """(scheme, host, port, path with query, the checked address) for `url`, or UnsafeTarget saying why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget(_("Only http:// and https:// URLs with a host can receive webhooks."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeTarget(_("The URL's port is not a number from 1 to 65535.")) from None
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UnsafeTarget(
            _("%(host)s could not be resolved (%(error)s).") % {"host": parts.hostname, "error": error}
        ) from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in found))
    if not addresses:
        raise UnsafeTarget(_("%(host)s resolves to no address.") % {"host": parts.hostname})
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            if why := _refusal(address):
                raise UnsafeTarget(
                    _(
                        "%(host)s resolves to %(address)s, %(why)s: webhooks only go to public addresses "
                        "(WEBHOOK_ALLOW_PRIVATE_TARGETS allows private ones)."
                    )
                    % {"host": parts.hostname, "address": address, "why": why}
                )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path, str(addresses[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, **kwargs)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, context=ssl.create_default_context(), **kwargs)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url, body, headers, *, timeout):
    """POSTs `body` to `url` as above. Returns (status, error text or ""): status None when no answer came."""
    try:
        scheme, host, port, path, address = target(url)
    except UnsafeTarget as refused:
        return None, f"refused: {refused}"
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(host, port, address, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)  # enough to let the server finish; the body itself is not used
        status = response.status
    except (OSError, http.client.HTTPException) as error:
        return None, repr(error)[:500]
    finally:
        connection.close()
    return status, "" if 200 <= status < 300 else f"HTTP {status}"
