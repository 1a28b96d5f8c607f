# Install one launcher script per ROS node into lib/${PROJECT_NAME}, so that
# `ros2 run gps_ros <node>` finds it. The node table is a text file with lines
# `name = package.module:function` (the same syntax as console_scripts), shared
# with the project's own launcher.
function(gps_ros_install_node_executables table_file)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${table_file})
  file(STRINGS ${table_file} _lines REGEX "^[A-Za-z_][A-Za-z0-9_]* *= *[A-Za-z0-9_.]+:[A-Za-z0-9_]+")
  foreach(_line IN LISTS _lines)
    string(REGEX MATCH "^([A-Za-z0-9_]+) *= *([A-Za-z0-9_.]+):([A-Za-z0-9_]+)" _ ${_line})
    set(_script ${CMAKE_CURRENT_BINARY_DIR}/node_executables/${CMAKE_MATCH_1})
    file(WRITE ${_script}
      "#!/usr/bin/env python3\n"
      "import sys\n"
      "from ${CMAKE_MATCH_2} import ${CMAKE_MATCH_3}\n"
      "sys.exit(${CMAKE_MATCH_3}())\n")
    install(PROGRAMS ${_script} DESTINATION lib/${PROJECT_NAME})
  endforeach()
endfunction()
