# Compiler warning flags for every flowveil target, kept in one place.
# FLOWVEIL_WERROR turns warnings into errors; CI sets it.

set(FLOWVEIL_WARNING_FLAGS
    -Wall -Wextra -Wpedantic
    -Wformat=2 -Wformat-security
    -Wshadow -Wpointer-arith -Wcast-align -Wwrite-strings
    -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
    -Wnull-dereference -Wdouble-promotion -Wvla
    -Wimplicit-fallthrough -Wundef -Wunused)

if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
    list(APPEND FLOWVEIL_WARNING_FLAGS -Wlogical-op -Wduplicated-cond -Wduplicated-branches)
endif()

if(FLOWVEIL_WERROR)
    list(APPEND FLOWVEIL_WARNING_FLAGS -Werror)
endif()

# Apply the project warnings to TARGET.
function(flowveil_warnings target)
    target_compile_options(${target} PRIVATE ${FLOWVEIL_WARNING_FLAGS})
endfunction()
