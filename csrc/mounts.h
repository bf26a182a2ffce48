/*
 * The sandbox's mount tree, shared by the units that build it (child code,
 * csrc/child.h's rules): csrc/mounts.c (the loop and the operations),
 * csrc/resolve.c (destinations, resolved inside the new root), csrc/newfs.c
 * (fresh filesystems: tmpfs, proc, overlayfs), csrc/root.c (the scratch
 * area, the root, pivot_root) and csrc/points.c (mount points the root lacks).
 */
#ifndef BUNBOX_MOUNTS_H
#define BUNBOX_MOUNTS_H

#include "shared.h"

#define PATH_CAP 4200
#define BB_POINTS_MAX 64

/* Where A builds the tree, in its private mount namespace: a tmpfs on the
 * host's /tmp (every source under it was opened before: bb_mounts_open),
 * holding the new root's mount point, overlay uppers and file contents.
 * It goes with the host's root at pivot_root; what was bound from it stays. */
#define SCRATCH "/tmp"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif

#define BB_MOUNT_ATTR_RDONLY 0x1
#define BB_MOUNT_ATTR_NOSUID 0x2
#define BB_MOUNT_ATTR_NODEV 0x4
#define BB_MOUNT_ATTR_NOEXEC 0x8
#define BB_AT_EMPTY_PATH 0x1000
#define BB_AT_RECURSIVE 0x8000
#define BB_OPEN_TREE_CLONE 1
#define BB_MOVE_MOUNT_EMPTY 0x44 /* MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH */

#define BB_RESOLVE_NO_MAGICLINKS 0x02
#define BB_RESOLVE_NO_SYMLINKS 0x04
#define BB_RESOLVE_IN_ROOT 0x10
/* How every destination is resolved (csrc/resolve.c). */
#define BB_IN_ROOT (BB_RESOLVE_IN_ROOT | BB_RESOLVE_NO_MAGICLINKS)

struct open_how_v0 {
  uint64_t flags, mode, resolve;
};

struct mount_attr_v0 {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/* The tree being built, on A's stack. */
struct bb_tree {
  struct bb_shared *sh;
  const struct bb_mount *ops;
  const int *fds;  /* bb_mounts_open's fd (or -errno) per op */
  int scratch;     /* O_PATH fd of the scratch tmpfs */
  int root;        /* O_PATH fd of the new root, once mounted */
  int image;       /* with points (csrc/points.c): the image's root as bound, under any point */
  char root_name[24]; /* its mount point in the scratch */
  int made;        /* names handed out in the scratch (files, overlay uppers) */
  int mask_file;   /* the scratch's empty file for BB_M_MASK, once made; else -1 */
  /* Overlays put on directories to make mount points in (csrc/points.c),
   * read-only once they are made. */
  int points[BB_POINTS_MAX];
  int npoints;
  /* Why no overlay could be put there, for the message of the mount point. */
  char points_why[160];
  /* Ops completed while making the mount points (symlinks, directories). */
  uint8_t done[BB_MOUNTS_MAX / 8];
  /* The root bind's attributes are set once attached (no mount_setattr). */
  int late_attrs;
};

/* What bb_open_dst makes when the destination is missing. */
enum { BB_DST_OPEN, BB_DST_DIR, BB_DST_FILE };

/* csrc/resolve.c */
BB_HIDDEN long bb_open_in(int dirfd, const char *path, int flags, uint64_t resolve);
BB_HIDDEN long bb_open_dst(int root, const char *dst, int make, unsigned mode);
BB_HIDDEN int bb_dst_fail(struct bb_tree *t, long err, const char *dst);

/* csrc/newfs.c */
BB_HIDDEN long bb_new_fs(const char *type, const char *const *kv, uint64_t attrs, char *why, size_t cap);
BB_HIDDEN long bb_new_tmpfs(uint32_t mode, uint64_t size, uint64_t attrs);
BB_HIDDEN long bb_overlay(struct bb_tree *t, const struct bb_mount *m, const int *lowers, uint32_t nlowers,
                          int upper, uint64_t attrs, char *why, size_t cap);
BB_HIDDEN void bb_fd_path(char *buf, long fd);

/* csrc/root.c */
BB_HIDDEN int bb_scratch(struct bb_tree *t);
BB_HIDDEN long bb_scratch_dir(struct bb_tree *t, char *name);
BB_HIDDEN void bb_scratch_name(struct bb_tree *t, char *name);
BB_HIDDEN int bb_root_make(struct bb_tree *t, uint32_t n, uint32_t *at);
BB_HIDDEN int bb_root_enter(struct bb_tree *t, const struct bb_mount *root);
BB_HIDDEN long bb_root_reopen(struct bb_tree *t);

/* csrc/points.c */
BB_HIDDEN int bb_mount_points(struct bb_tree *t, uint32_t from, uint32_t n);
BB_HIDDEN int bb_points_seal(struct bb_tree *t);

/* csrc/mounts.c */
BB_HIDDEN long bb_attach(int tree, int dfd);
BB_HIDDEN long bb_set_attrs_fd(int tree, uint64_t attrs, int recursive);
BB_HIDDEN long bb_set_attrs_path(const char *path, uint64_t attrs);
BB_HIDDEN uint64_t bb_attrs_for(uint32_t flags);
BB_HIDDEN int bb_mount_fail(struct bb_tree *t, int stage, long err, const char *what, const char *why);

#endif
