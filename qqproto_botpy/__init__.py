"""botpy's handlers, message objects and API on qqproto's gateway: change ``from botpy import Client``.

```python
from qqproto_botpy import Client
```
"""

from transports.asyncio import GatewayFatalError

from ._client import Client

__all__ = ["Client", "GatewayFatalError"]
