"""The training job shared by `gps-ros train` (in-process MuJoCo) and the learner node (ROS):
config, algorithm registry, the trainer loop, checkpoints, progress and results."""
