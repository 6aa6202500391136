"""The project-stats workflow's steps (statemachines/project_stats.asl.json)."""
