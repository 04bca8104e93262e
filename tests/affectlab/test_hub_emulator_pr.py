"""Pull requests and discussions on the Hub emulator, driven by the unmodified `huggingface_hub` client in
this process: `create_commit(create_pr=True)` by a user without write access opens `refs/pr/N` (files,
LFS objects included, readable at that revision; main untouched), more commits go onto the PR, the
discussions list / details / status / comments / merge behave as on the Hub (rights: writers merge, the
author or writers close), a merge applies the PR's changes on top of a moved main, a conflicting merge is
refused, and direct commits to main by a non-writer or PRs without a token are refused."""

from __future__ import annotations

import pytest

from affectlab.testing.hub_emulator import HubEmulator

ALICE, BOB, CAROL = "hf_aliceToken000000000000000001", "hf_bobToken00000000000000000002", "hf_carolToken0000000000000003"
REPO = "alice/results"


@pytest.fixture()
def hub(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)   # tests run offline; the emulator is on loopback
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    with HubEmulator(tokens={ALICE: "alice", BOB: "bob", CAROL: "carol"}, lfs_threshold=64) as server:
        yield server


def api(hub, token):
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.url, token=token)


def add(path: str, data: bytes):
    from huggingface_hub import CommitOperationAdd

    return CommitOperationAdd(path, data)


def test_pull_request_from_a_non_writer_then_merge(hub, tmp_path):
    from huggingface_hub.errors import HfHubHTTPError

    alice, bob = api(hub, ALICE), api(hub, BOB)
    alice.create_repo(REPO, repo_type="dataset")
    alice.create_commit(REPO, repo_type="dataset", operations=[add("README.md", b"# results\n")],
                        commit_message="readme")
    main_before = alice.dataset_info(REPO).sha

    info = bob.create_commit(REPO, repo_type="dataset", create_pr=True, commit_message="Add bob/model result",
                             commit_description="accuracy 0.9 on sst2 validation",
                             operations=[add("bob/model/results_1.json", b'{"a": 1}\n'),
                                         add("bob/model/blob.bin", b"\0" * 200)])  # an LFS object too
    assert info.pr_num == 1 and info.pr_revision == "refs/pr/1"
    assert info.pr_url == f"{hub.url}/datasets/{REPO}/discussions/1"
    assert alice.dataset_info(REPO).sha == main_before  # main untouched
    assert "bob/model/results_1.json" not in alice.list_repo_files(REPO, repo_type="dataset")
    pr_files = alice.list_repo_files(REPO, repo_type="dataset", revision="refs/pr/1")
    assert {"README.md", "bob/model/results_1.json", "bob/model/blob.bin"} <= set(pr_files)
    from huggingface_hub import hf_hub_download

    got = hf_hub_download(REPO, "bob/model/results_1.json", repo_type="dataset", revision="refs/pr/1",
                          endpoint=hub.url, token=BOB, cache_dir=tmp_path / "cache")
    assert open(got, "rb").read() == b'{"a": 1}\n'
    lfs = alice.get_paths_info(REPO, ["bob/model/blob.bin"], repo_type="dataset", revision="refs/pr/1")[0]
    assert lfs.lfs is not None and lfs.size == 200

    # bob may not write to main; nobody may open a PR without a token
    with pytest.raises(HfHubHTTPError) as err:
        bob.create_commit(REPO, repo_type="dataset", operations=[add("x.json", b"{}")], commit_message="direct")
    assert err.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as err:
        api(hub, False).create_commit(REPO, repo_type="dataset", operations=[add("y.json", b"{}")],
                                      commit_message="anonymous", create_pr=True)
    assert err.value.response.status_code == 401

    # the author adds a commit to the PR; main moves meanwhile (another path)
    bob.create_commit(REPO, repo_type="dataset", revision="refs/pr/1", commit_message="fix",
                      operations=[add("bob/model/results_1.json", b'{"a": 2}\n')])
    alice.create_commit(REPO, repo_type="dataset", operations=[add("alice/m/results_2.json", b"{}\n")],
                        commit_message="alice result")

    listed = list(alice.get_repo_discussions(REPO, repo_type="dataset"))
    assert [(d.num, d.title, d.author, d.status, d.is_pull_request) for d in listed] == \
        [(1, "Add bob/model result", "bob", "open", True)]
    assert list(alice.get_repo_discussions(REPO, repo_type="dataset", discussion_type="discussion")) == []
    assert list(alice.get_repo_discussions(REPO, repo_type="dataset", discussion_status="closed")) == []
    details = alice.get_discussion_details(REPO, 1, repo_type="dataset")
    assert details.target_branch == "refs/heads/main" and details.merge_commit_oid is None
    kinds = [e.type for e in details.events]
    assert kinds == ["comment", "commit", "commit"] and details.events[0].content == "accuracy 0.9 on sst2 validation"
    refs = alice.list_repo_refs(REPO, repo_type="dataset", include_pull_requests=True)
    assert [r.ref for r in refs.pull_requests] == ["refs/pr/1"]

    # only writers merge; the merge applies the PR's changes on top of the moved main
    with pytest.raises(HfHubHTTPError) as err:
        bob.merge_pull_request(REPO, 1, repo_type="dataset")
    assert err.value.response.status_code == 403
    alice.merge_pull_request(REPO, 1, repo_type="dataset", comment="thanks")
    files = set(alice.list_repo_files(REPO, repo_type="dataset"))
    assert {"README.md", "alice/m/results_2.json", "bob/model/results_1.json", "bob/model/blob.bin"} <= files
    merged = hf_hub_download(REPO, "bob/model/results_1.json", repo_type="dataset", endpoint=hub.url,
                             token=ALICE, cache_dir=tmp_path / "cache2")
    assert open(merged, "rb").read() == b'{"a": 2}\n'
    details = alice.get_discussion_details(REPO, 1, repo_type="dataset")
    assert details.status == "merged" and details.merge_commit_oid == alice.dataset_info(REPO).sha
    assert [d.status for d in alice.get_repo_discussions(REPO, repo_type="dataset", discussion_status="closed")] \
        == ["merged"]


def test_conflicts_status_comments_and_discussions(hub):
    from huggingface_hub.errors import HfHubHTTPError

    alice, bob, carol = api(hub, ALICE), api(hub, BOB), api(hub, CAROL)
    alice.create_repo(REPO, repo_type="dataset")
    alice.create_commit(REPO, repo_type="dataset", operations=[add("shared.json", b"1\n")], commit_message="base")
    pr = bob.create_commit(REPO, repo_type="dataset", create_pr=True, commit_message="change shared",
                           operations=[add("shared.json", b"2\n")])
    alice.create_commit(REPO, repo_type="dataset", operations=[add("shared.json", b"3\n")], commit_message="main")
    with pytest.raises(HfHubHTTPError) as err:
        alice.merge_pull_request(REPO, pr.pr_num, repo_type="dataset")
    assert err.value.response.status_code == 409 and "shared.json" in str(err.value)

    # a second PR: closed by someone else -> 403, by its author -> closed; reopened by a writer
    second = bob.create_commit(REPO, repo_type="dataset", create_pr=True, commit_message="another",
                               operations=[add("b.json", b"{}\n")])
    assert second.pr_num == 2
    with pytest.raises(HfHubHTTPError) as err:
        carol.change_discussion_status(REPO, 2, "closed", repo_type="dataset")
    assert err.value.response.status_code == 403
    event = bob.change_discussion_status(REPO, 2, "closed", repo_type="dataset", comment="not needed")
    assert event.new_status == "closed"
    # a closed PR takes no more commits
    with pytest.raises(HfHubHTTPError):
        bob.create_commit(REPO, repo_type="dataset", revision="refs/pr/2", commit_message="more",
                          operations=[add("c.json", b"{}\n")])
    alice.change_discussion_status(REPO, 2, "open", repo_type="dataset")
    assert alice.get_discussion_details(REPO, 2, repo_type="dataset").status == "open"

    # plain discussions and comments; an empty draft pull request
    disc = carol.create_discussion(REPO, "Is the split right?", repo_type="dataset", description="see card")
    assert disc.num == 3 and not disc.is_pull_request and disc.events[0].content == "see card"
    comment = alice.comment_discussion(REPO, 3, "yes", repo_type="dataset")
    assert comment.content == "yes" and comment.author == "alice"
    draft = bob.create_pull_request(REPO, "draft PR", repo_type="dataset")
    assert draft.is_pull_request and draft.status == "draft" and draft.num == 4
    all_items = list(alice.get_repo_discussions(REPO, repo_type="dataset"))
    assert [d.num for d in all_items] == [4, 3, 2, 1]
    prs = list(alice.get_repo_discussions(REPO, repo_type="dataset", discussion_type="pull_request",
                                          author="bob"))
    assert [d.num for d in prs] == [4, 2, 1]
    assert hub.log and all(ALICE not in path and BOB not in path for _, path, _ in hub.log)
