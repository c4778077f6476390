/*
 * ctl_term.c - heartbeatctl's terminal: its size and character set,
 * writing a line cut to the screen's width, the transient progress line on
 * stderr, and signals. SIGINT, SIGTERM, SIGHUP and SIGWINCH are turned into
 * a byte on a self-pipe that conn_readline polls, so the wait and watch
 * loops handle them between lines (cancel the job, restore the cursor)
 * instead of dying in the middle of a frame.
 */

#include <errno.h>
#include <langinfo.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ctl.h"

static int	 progress_on;		/* a progress line is on stderr */
static int	 sig_pipe[2] = { -1, -1 };
static volatile sig_atomic_t sig_stop;
static volatile sig_atomic_t sig_winch;

/* The size of the terminal on fd; 80x24 when it has none. */
void
term_size(int fd, int *cols, int *rows)
{
	struct winsize ws;

	*cols = 80;
	*rows = 24;
	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
		*cols = ws.ws_col;
		*rows = ws.ws_row > 0 ? ws.ws_row : 24;
	}
}

/* Whether the locale's character set is UTF-8 (block characters allowed). */
int
term_utf8(void)
{
	const char *cs = nl_langinfo(CODESET);

	return cs != NULL && (strcasecmp(cs, "UTF-8") == 0 ||
	    strcasecmp(cs, "utf8") == 0);
}

/*
 * Write s to f cut to cols terminal columns: escape sequences take none,
 * a UTF-8 character takes one. A cut resets attributes.
 */
void
term_put(FILE *f, const char *s, int cols)
{
	int col = 0, esc = 0;

	while (*s != '\0') {
		unsigned char ch = (unsigned char)*s;

		if (ch == '\033' && s[1] == '[') {
			/* CSI: parameters, then one final byte in @..~ */
			esc = 1;
			fputs("\033[", f);
			for (s += 2; *s != '\0' && (*s < '@' || *s > '~'); s++)
				fputc(*s, f);
			if (*s != '\0')
				fputc(*s++, f);
			continue;
		}
		if ((ch & 0xc0) != 0x80 && col++ >= cols)
			break;
		fputc(ch, f);
		s++;
	}
	if (esc && *s != '\0')
		fputs("\033[0m", f);
}

/* Note that a progress line was drawn on stderr. */
void
progress_shown(void)
{
	progress_on = 1;
}

/* Take a transient progress line off stderr before any other output. */
void
progress_clear(void)
{
	if (progress_on) {
		fputs("\r\033[K", stderr);
		progress_on = 0;
	}
}

/* Record the signal and wake conn_readline through the self-pipe. */
static void
sig_handler(int sig)
{
	int saved = errno;
	ssize_t n;

	if (sig == SIGWINCH)
		sig_winch = 1;
	else
		sig_stop = sig;
	n = write(sig_pipe[1], "", 1);
	(void)n;
	errno = saved;
}

/* Route SIGINT, SIGTERM, SIGHUP and SIGWINCH into conn_readline. */
int
sig_install(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH };
	struct sigaction sa;
	size_t i;

	if (sig_pipe[0] != -1)
		return 0;	/* installed already */
	if (pipe(sig_pipe) == -1 || conn_nonblock(sig_pipe[0]) == -1 ||
	    conn_nonblock(sig_pipe[1]) == -1) {
		ctl_error("internal", "pipe: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	return 0;
}

/* The self-pipe's read end for poll(2), or -1 before sig_install. */
int
sig_fd(void)
{
	return sig_pipe[0];
}

/* The SIGINT, SIGTERM or SIGHUP that arrived since the last call, or 0. */
int
sig_take_stop(void)
{
	int sig = sig_stop;

	sig_stop = 0;
	return sig;
}

/* Whether the window size changed since the last call. */
int
sig_take_winch(void)
{
	if (sig_winch == 0)
		return 0;
	sig_winch = 0;
	return 1;
}
