"""Renderers: people-facing text and markdown made only from the JSON documents.

Pure: nothing here reads live objects, the network or the clock. The plan
renderers take the execution-plan JSON (``ExecutionPlan.to_json()`` or a saved
plan file) so that what a reviewer reads cannot drift from what the machine
output says.
"""
