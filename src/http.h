#ifndef HB_HTTP_H
#define HB_HTTP_H
#endif
