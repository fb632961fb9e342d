/* apical/export.h — marks the symbols libapical exports (everything else is hidden). */
#ifndef APICAL_EXPORT_H
#define APICAL_EXPORT_H
#if defined(__GNUC__)
#define AP_API __attribute__((visibility("default")))
#else
#define AP_API
#endif
#endif
