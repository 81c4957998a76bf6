// How the cairn-agent process uses malloc; the work is done in CairnMalloc.c, before main.
#pragma once
