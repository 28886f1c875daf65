"""Durable execution: workflows replayed from checkpoints, steps, the runtime."""
