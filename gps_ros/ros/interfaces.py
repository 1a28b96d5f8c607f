"""Names of the node graph's topics, services and actions: one place, used by every node.

All names are relative, so the whole graph moves under a namespace (launch argument
``namespace``). Hardware and the MuJoCo sim node serve the same robot-side names.
"""

# Robot side (ros2_control on hardware, the sim node in simulation).
JOINT_STATES = "joint_states"                    # sensor_msgs/JointState, robot -> controller
CAMERA_IMAGE = "camera/image_raw"                # sensor_msgs/Image, robot -> controller
EFFORT_COMMANDS = "effort_controller/commands"   # std_msgs/Float64MultiArray, controller -> robot (forward effort controller)
RESET_SCENE = "reset_scene"                      # gps_ros/srv/ResetScene, served by the sim node
CLOCK = "/clock"                                 # rosgraph_msgs/Clock, published by the sim node in lock-step mode

# Trials.
RUN_TRIAL = "run_trial"                          # gps_ros/action/RunTrial, served by the controller, called by the learner
TRIAL_STEPS = "trial_steps"                      # gps_ros/msg/TrialStep, controller -> recorder, one per control step
RECORDED_SAMPLES = "recorded_samples"            # gps_ros/msg/Sample, recorder -> learner, after the sample is on disk

# Operator and progress.
RESET_REQUEST = "reset_request"                  # gps_ros/msg/ResetRequest, learner -> operator console
ACKNOWLEDGE_RESET = "acknowledge_reset"          # gps_ros/srv/AcknowledgeReset, served by the learner
LEARNER_STATUS = "learner/status"                # gps_ros/msg/LearnerStatus, learner -> anyone
