#ifndef HB_DAEMON_H
#define HB_DAEMON_H
#endif
