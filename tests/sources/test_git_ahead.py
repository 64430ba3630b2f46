"""sync asks every source's status and fetch ahead, all at once (sources.git_ahead), and each
source's turn uses those answers instead of asking git again."""

from __future__ import annotations

import git

from covid19_images.sources.git import open_repo, update_source
from covid19_images.sources.git_ahead import ask_ahead
from covid19_images.sources.registry import load_registry
from covid19_images.sources.transport import git_environment
from tests.sync.test_sync_faults import A2, World, world  # noqa: F401 - the fixture: two synced upstreams


def test_the_answers_asked_ahead_are_each_sources_own(world: World) -> None:  # noqa: F811
    registry = load_registry(world.root)
    env = git_environment(mirror=world.mirror)
    (world.root / "datasets" / "beta" / "untracked.txt").write_text("a local edit")
    world.alpha.make_unreachable()
    asked = ask_ahead(world.root, registry.values(), env)
    assert asked["beta"].state == "dirty" and asked["beta"].fetch_error is None
    assert asked["alpha"].state == "clean"
    assert isinstance(asked["alpha"].fetch_error, git.GitCommandError)
    # a source whose move a killed sync announced is asked in its turn, after that move is finished
    assert set(ask_ahead(world.root, registry.values(), env, moving=["alpha"])) == {"beta"}


def test_a_sources_turn_uses_the_answers_instead_of_fetching_again(world: World) -> None:  # noqa: F811
    registry = load_registry(world.root)
    env = git_environment(mirror=world.mirror)
    tip = world.alpha.publish(world.tree("a2", A2))
    asked = ask_ahead(world.root, [registry["alpha"]], env)  # fetched: origin/master is the new tip
    world.alpha.make_unreachable()  # a fetch now would fail
    repo = open_repo(world.root, env)
    update = update_source(repo, registry["alpha"], env, allow_rewrite=False, asked=asked["alpha"])
    assert update.status == "updated" and update.new == tip  # moved on the answer, no second fetch
    beta = update_source(repo, registry["beta"], env, allow_rewrite=False)  # asked in its turn: fetches
    assert beta.status == "unchanged"
