#ifndef HB_TICK_H
#define HB_TICK_H
#endif
