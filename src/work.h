#ifndef HB_WORK_H
#define HB_WORK_H
#endif
