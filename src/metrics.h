#ifndef HB_METRICS_H
#define HB_METRICS_H
#endif
