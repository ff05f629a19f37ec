"""``ipfs://`` and ``ar://`` URLs through the gateways, and Livepeer's NFT metadata templates."""

from __future__ import annotations

import json

import pytest

from mediatasks import errors, settings
from mediatasks.ipfs import gateway, nft

CONFIG = settings.Settings(
    ipfs_gateway_url="http://127.0.0.1:8080/", arweave_gateway_url="http://127.0.0.1:1984"
)


@pytest.mark.parametrize(
    ("url", "fetched"),
    [
        ("ipfs://bafybeig", "http://127.0.0.1:8080/ipfs/bafybeig"),
        ("ipfs://bafybeig/a dir/v.mp4", "http://127.0.0.1:8080/ipfs/bafybeig/a%20dir/v.mp4"),
        ("IPFS://bafybeig", "http://127.0.0.1:8080/ipfs/bafybeig"),
        ("ar://Zk9x_Jv-3", "http://127.0.0.1:1984/Zk9x_Jv-3"),
        ("https://example.com/v.mp4", "https://example.com/v.mp4"),
    ],
)
def test_gateway_urls(url: str, fetched: str) -> None:
    assert gateway.http_url(url, CONFIG) == fetched


@pytest.mark.parametrize(
    "url", ["ipfs://", "ipfs:///x", "ar://a b", "ipfs://x/../y", "ar://x/./y", "ipfs://@evil"]
)
def test_bad_gateway_urls(url: str) -> None:
    with pytest.raises(errors.InvalidInput):
        gateway.http_url(url, CONFIG)


def test_file_template() -> None:
    found = nft.metadata(
        name='a "b"',
        playback_id="p1",
        video_cid="bafyv",
        template=None,
        overrides=None,
        player_url="https://player.example/",
    )
    assert found == {
        "name": 'a "b"',
        "description": 'Livepeer video from asset "a \\"b\\""',
        "image": nft.IMAGE_URL,
        "animation_url": "ipfs://bafyv",
        "properties": {"video": "ipfs://bafyv"},
    }
    assert json.loads(nft.document(found)) == found


def test_player_template_and_deep_merge() -> None:
    found = nft.metadata(
        name="n",
        playback_id="p1",
        video_cid="bafyv",
        template="player",
        overrides={"properties": {"extra": [1], "video": None}, "image": "ipfs://mine"},
        player_url="https://player.example/embed?theme=dark",
    )
    assert found["animation_url"] == "https://player.example/embed?loop=1&theme=dark&v=p1"
    assert found["external_url"] == "https://player.example/embed?theme=dark&v=p1"
    assert found["image"] == "ipfs://mine"
    assert found["properties"] == {"com.livepeer.playbackId": "p1", "extra": [1]}
