#ifndef REFLEX_LIB_LOG_H
#define REFLEX_LIB_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

int log_level_parse(const char *name);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Holds back what is logged from now (a component starting), until
 * log_release: when it worked, the lines go out as they were; when it
 * failed, at debug level, and the first error line is copied into
 * first_error (when given), for the one line that says why. */
void log_hold(void);
void log_release(bool failed, char *first_error, size_t size);
/* Routes libbpf's own messages through log_msg. */
void log_route_libbpf(void);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
