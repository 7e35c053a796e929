/* Operational log lines: one JSON object per line on stderr. Only fixed messages and
 * codes go in; `detail` is for library diagnostics (never request data). */
#ifndef HIP_LOG_H
#define HIP_LOG_H

void log_line(const char *level, const char *msg, const char *detail, long code);

#endif
