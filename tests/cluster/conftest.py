"""Fixtures for the multi-node tests: a real two-node Ray started (and stopped) by this session."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tests.cluster.multinode import LocalMultiNodeCluster

WORKER_GROUP = "pulse_cpu"


@pytest.fixture(scope="session")
def two_node_cluster():
    """Head (4 CPUs) + a "worker group" node (2 CPUs, custom resource ``pulse_cpu``), token auth on.

    4 head CPUs: after the worker node dies, the 2 training workers hold 2 and Ray Data's file
    listing task needs a whole CPU beside the preprocess actor.
    """
    cluster = LocalMultiNodeCluster(auth_token=f"pulse-test-{uuid.uuid4().hex}")
    try:
        cluster.start_head(num_cpus=4)
        cluster.add_worker("worker", num_cpus=2, resources={WORKER_GROUP: 2})
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture
def cluster(two_node_cluster):
    """The shared cluster with a live worker-group node (a test that killed one gets a new one)."""
    if not two_node_cluster.nodes[-1].alive() or two_node_cluster.nodes[-1].name == "head":
        two_node_cluster.add_worker(
            f"worker{len(two_node_cluster.nodes)}", num_cpus=2, resources={WORKER_GROUP: 2}
        )
    return two_node_cluster
