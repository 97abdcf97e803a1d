//! The container store's view of a container's files for `docker cp` and `docker export`
//! (`GetContainerFs`): its pid while it runs, its rootfs mount, its binds and volumes.
//! The store does no file work itself: `crate::containerfs` does it on a thread of its
//! own, for the API.

use actix::prelude::*;

use super::{ContainerStoreActor, GetContainerFs, StoreError, drop_prestart};
use crate::containerfs::ContainerFs;

impl Handler<GetContainerFs> for ContainerStoreActor {
    type Result = Result<ContainerFs, StoreError>;
    fn handle(&mut self, msg: GetContainerFs, _: &mut Self::Context) -> Self::Result {
        let entry = self.entry(&msg.id)?;
        let c = &entry.c;
        let points = c.mounts();
        let fs = ContainerFs {
            id: c.id.clone(),
            pid: if c.state.is_running() { c.state.pid } else { 0 },
            rootfs: c.rootfs.clone(),
            mounts: points.iter().map(|m| m.spec()).collect(),
            volumes: points
                .iter()
                .map(|m| (m.destination.clone(), m.rw))
                .collect(),
            readonly_rootfs: c.host_config.readonly_rootfs.unwrap_or(false),
            user: c.config.user.clone().unwrap_or_default(),
        };
        if fs.pid == 0 {
            // Its create set it up ahead, its layer mounted by a waiting init: let that
            // go, so that the copy's mount of the layer is the only one (the API waits
            // for the teardown: `AwaitReleased`).
            let id = fs.id.clone();
            if let Some(p) = self.take_prestart(&id) {
                drop_prestart(&self.peers, &id, &p);
            }
        }
        Ok(fs)
    }
}
