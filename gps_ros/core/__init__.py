"""Pure numpy/scipy math of guided policy search. Imports neither rclpy nor torch."""
