# envs/cn-north-1 with nothing set: defaults.json's names, the seed's settings.
