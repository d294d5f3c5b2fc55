/*
 * turn_limits.c - placeholder until the ODMR front end lands.
 */
#include "turnd.h"

#include <stddef.h>

size_t turn_line_max(void);

/* turn_line_max - longest command line accepted on the ODMR port. */
size_t turn_line_max(void)
{
    return TURN_ODMR_LINE_MAX;
}
