#ifndef HB_HARNESS_H
#define HB_HARNESS_H
#endif
