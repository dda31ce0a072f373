"""Scale-out over many GPU boxes (issue #15): the placement policy, honest pairing and the mapping to Ray task
options, as pure logic. Nothing here imports Ray at module level; `docs/cluster.md` says what runs where."""
