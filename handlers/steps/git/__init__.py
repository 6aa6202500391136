"""Steps of the git workflows (git-clone, git-merge): real git on the project workspace."""
