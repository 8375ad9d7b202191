/* log.h: leveled, format-checked logging to stderr with a per-subsystem prefix. */
#ifndef MVM_UTIL_LOG_H
#define MVM_UTIL_LOG_H

#include <stdbool.h>

/* LOG_OFF: nothing, not even errors (the Firecracker API's "Off"). */
enum log_level { LOG_OFF = -1, LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped. Default LOG_WARN; MVM_LOG=debug|info|warn|err or
 * log_set_level() change it at run time. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Reads MVM_LOG from the environment (unknown values are ignored). */
void log_init_from_env(void);

/* Where messages go: stderr (fd 2) unless a front end gave a log file (--log-path, the API's
 * PUT /logger). Each message is one write(), so lines from several threads never mix. */
void log_set_fd(int fd);

/* The calling thread's last error message (logged or not, whatever the level), without the
 * "mvm: error: " prefix, or "" since log_clear_last_error(): what a front end that builds a VM
 * for a client (the API's InstanceStart) reports back as the reason it failed. */
const char *log_last_error(void);
void log_clear_last_error(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifndef pr_fmt
#define pr_fmt(fmt) fmt
#endif

#define pr_err(fmt, ...)   log_msg(LOG_ERR, pr_fmt(fmt), ##__VA_ARGS__)
#define pr_warn(fmt, ...)  log_msg(LOG_WARN, pr_fmt(fmt), ##__VA_ARGS__)
#define pr_info(fmt, ...)  log_msg(LOG_INFO, pr_fmt(fmt), ##__VA_ARGS__)
#define pr_debug(fmt, ...)                                                                         \
	do {                                                                                       \
		if (log_get_level() >= LOG_DEBUG)                                                  \
			log_msg(LOG_DEBUG, pr_fmt(fmt), ##__VA_ARGS__);                            \
	} while (0)

/* Logs only the first time this call site is reached: for anything a guest can trigger. */
#define pr_warn_once(fmt, ...)                                                                     \
	do {                                                                                       \
		static bool warned_; /* __atomic builtins: clang rejects them on _Atomic */        \
		if (!__atomic_exchange_n(&warned_, true, __ATOMIC_RELAXED))                        \
			log_msg(LOG_WARN, pr_fmt(fmt), ##__VA_ARGS__);                             \
	} while (0)

#endif
