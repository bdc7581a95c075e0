"""POST bodies on the node's HTTP server: chunked transfer coding read to its end, or
refused once over the limit; routes matched by path or folder."""

from __future__ import annotations

from io import BytesIO

import pytest

from iqgate.node.ops.http import read_chunked, route_for


def test_a_chunked_body_is_joined_and_its_trailer_skipped():
    stream = BytesIO(b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: 1\r\n\r\nnext request")
    assert read_chunked(stream, 100) == b"abcdefg"
    assert stream.read() == b"next request"


def test_a_chunked_body_over_the_limit_is_refused():
    assert read_chunked(BytesIO(b"4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n"), 6) is None


def test_a_malformed_chunk_size_is_an_error():
    with pytest.raises(ValueError):
        read_chunked(BytesIO(b"zz\r\nabcd\r\n0\r\n\r\n"), 100)


def test_post_routes_match_their_path_and_the_paths_below_it():
    routes = {"/studies": lambda request: (200, "text/plain", b"")}
    assert route_for(routes, "/studies") is routes["/studies"]
    assert route_for(routes, "/studies/1.2.3") is routes["/studies"]
    assert route_for(routes, "/studiesx") is None
