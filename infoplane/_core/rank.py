"""Which process this is under ``torch.distributed``, and the one-writer-per-store rule (rank 0 writes)."""
from __future__ import annotations

__all__ = ["rank_and_world", "check_writer_rank"]


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, or ``(0, 1)`` when none is initialised."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def check_writer_rank(what: str) -> None:
    """Raise RuntimeError when a process other than rank 0 is asked to write a store."""
    rank, world = rank_and_world()
    if rank != 0:
        raise RuntimeError(
            f"{what}: this process is rank {rank} of {world} under torch.distributed, and only rank 0 may "
            "write a store (one writer per store). Record on rank 0 only, or use "
            "infoplane.integrations.DistributedRecorder(..., mode='gather'), whose ranks each record a shard "
            "of the probe that rank 0 gathers into one store."
        )
