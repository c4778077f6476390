#include "tick.h"
