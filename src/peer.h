#ifndef HB_PEER_H
#define HB_PEER_H
#endif
